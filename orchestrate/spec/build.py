"""Validated plain data → the frozen model of model.py.

Only called once schema and semantic checks have passed, so shapes are trusted.
Durations become seconds everywhere (also inside the approval, rollback, precheck
and handler mappings), so nothing downstream parses them again. Stage ``retry`` and
``on_failure`` are resolved against ``defaults`` here because the engine reads them
from the stage; ``timeout`` is not, so that the pipeline default stays visible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from orchestrate.domain.status import OnFailure
from orchestrate.spec.durations import parse_duration
from orchestrate.spec.marks import Document
from orchestrate.spec.matrix import expand
from orchestrate.spec.model import PipelineSpec, RetrySpec, StageKind, StageSpec, TriggerSpec
from orchestrate.spec.semantics import WORK_KEYS


def build_pipeline(doc: Document, needs: list[tuple[str, ...]], text: str) -> PipelineSpec:
    data: dict[str, Any] = doc.data
    defaults = data.get("defaults") or {}
    retry = _retry(defaults.get("retry"), RetrySpec())
    on_failure = OnFailure(defaults.get("on_failure", OnFailure.HALT))
    stages = expand(
        [
            _stage(raw, deps, doc.values[("stages", i)][0], retry, on_failure, defaults)
            for i, (raw, deps) in enumerate(zip(data["stages"], needs, strict=True))
        ]
    )
    handlers = data.get("handlers")
    return PipelineSpec(
        name=data["name"],
        stages=stages,
        path=doc.file,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        text=text,
        description=data.get("description", ""),
        version=data.get("version", 1),
        triggers=tuple(_trigger(t) for t in data.get("triggers") or ()),
        variables={k: _text(v) for k, v in (data.get("variables") or {}).items()},
        timeout=_seconds(data.get("timeout")),
        default_timeout=_seconds(defaults.get("timeout")),
        default_retry=retry,
        default_on_failure=on_failure,
        max_parallel=defaults.get("max_parallel"),
        concurrency=data.get("concurrency"),
        secrets=tuple(data.get("secrets") or ()),
        labels=tuple(data.get("labels") or ()),
        experiments=_experiments(data.get("experiments")),
        budget=data.get("budget"),
        handlers=(
            {when: [_action(h, ("timeout",)) for h in items] for when, items in handlers.items()}
            if handlers is not None
            else None
        ),
    )


def _stage(
    raw: dict[str, Any],
    needs: tuple[str, ...],
    line: int,
    default_retry: RetrySpec,
    default_on_failure: OnFailure,
    defaults: dict[str, Any],
) -> StageSpec:
    work = [k for k in WORK_KEYS if k in raw]
    kind = StageKind(work[0]) if work else StageKind.GATE
    depends_on = raw.get("depends_on")
    approval = raw.get("approval")
    if approval is not None:
        approval = _durations(approval, ("timeout",))
        if "escalate_to" in approval:
            approval["escalate_to"] = _strings(approval["escalate_to"])
    repair = raw.get("repair")
    if repair is not None:
        repair = dict(repair)
        # PipelineSpec has no field for defaults.max_repair_loops: it is resolved into each repair.
        if "max_loops" not in repair and "max_repair_loops" in defaults:
            repair["max_loops"] = defaults["max_repair_loops"]
    return StageSpec(
        name=raw["name"],
        kind=kind,
        needs=needs,
        line=line,
        run=raw.get("run"),
        agent=raw.get("agent"),
        task=raw.get("task"),
        python=raw.get("python"),
        uses=raw.get("uses"),
        with_=dict(raw.get("with") or {}),
        timeout=_seconds(raw.get("timeout")),
        retry=_retry(raw.get("retry"), default_retry),
        on_failure=OnFailure(raw.get("on_failure", default_on_failure)),
        optional=raw.get("optional", False),
        depends_on=tuple(_strings(depends_on)) if depends_on is not None else None,
        parallel_with=raw.get("parallel_with"),
        environment=raw.get("environment"),
        env={k: _text(v) for k, v in (raw.get("env") or {}).items()},
        requires_approval=raw.get("requires_approval", False),
        approvers=tuple(raw.get("approvers") or ()),
        approval=approval,
        when=raw.get("when"),
        rollback=_action(raw["rollback"], ("timeout",)) if "rollback" in raw else None,
        rollback_to=raw.get("rollback_to"),
        repair=repair,
        precheck=_durations(raw["precheck"], ("timeout", "interval")) if "precheck" in raw else None,
        matrix=raw.get("matrix"),
        budget=raw.get("budget"),
        secrets=tuple(raw.get("secrets") or ()),
        executor=raw.get("executor"),
    )


def _retry(raw: int | dict[str, Any] | None, base: RetrySpec) -> RetrySpec:
    """A stage's retry overrides the default field by field; an integer is ``max``."""
    if raw is None:
        return base
    if isinstance(raw, int):
        return RetrySpec(max=raw, backoff=base.backoff, exit_codes=base.exit_codes)
    codes = raw.get("exit_codes")
    return RetrySpec(
        max=raw.get("max", base.max),
        backoff=parse_duration(raw["backoff"]) if "backoff" in raw else base.backoff,
        exit_codes=tuple(codes) if codes is not None else base.exit_codes,
    )


def _trigger(raw: dict[str, Any]) -> TriggerSpec:
    return TriggerSpec(
        event=raw.get("event"),
        branches=tuple(_strings(raw.get("branches"))),
        paths=tuple(_strings(raw.get("paths"))),
        cron=raw.get("cron"),
        tz=raw.get("tz"),
        catchup=bool(raw.get("catchup", False)),
        variables={k: _text(v) for k, v in (raw.get("variables") or {}).items()},
    )


def _experiments(raw: Any) -> list[dict[str, Any]] | None:
    """Both spellings (a list, or a map from name) become a list of experiments with names."""
    if raw is None:
        return None
    items = [{"name": name, **body} for name, body in raw.items()] if isinstance(raw, dict) else list(raw)
    return [{**e, "variants": _variants(e["variants"])} for e in items]


def _variants(raw: Any) -> list[dict[str, Any]]:
    """Both spellings (a list of variants, or a map from name to weight) become a list with weights."""
    if isinstance(raw, dict):
        return [{"name": name, "weight": weight} for name, weight in raw.items()]
    return [{"weight": 1, **v} for v in raw]


def _action(raw: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out = _durations(raw, keys)
    if "env" in out:
        out["env"] = {k: _text(v) for k, v in out["env"].items()}
    return out


def _durations(raw: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out = dict(raw)
    for key in keys:
        if key in out:
            out[key] = parse_duration(out[key])
    return out


def _seconds(value: str | float | None) -> float | None:
    return None if value is None else parse_duration(value)


def _strings(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _text(value: Any) -> str:
    """Scalars as the shell will see them: YAML true is "true", not Python's "True"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
