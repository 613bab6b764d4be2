"""``orchestrate event emit``: record an event and start every enabled pipeline it triggers.

An event has a name, a JSON payload (at most 1 MB) and what it says about the
change: branch, labels, changed files (from options, else from the payload's
``branch``/``ref``, ``labels`` and ``changed_files``/``files`` keys). A trigger
matches on the event name, its ``branches`` globs and its ``paths`` globs, and
may map payload fields onto the run's variables (``variables: {env:
"${event.deployment.env}"}``): those override the file and ``--var``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import FeatureNotAvailable, UsageError
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.records import EventInfo
from orchestrate.spec.interpolate import interpolate
from orchestrate.spec.model import PipelineSpec, TriggerSpec

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store import Store

MAX_PAYLOAD = 1024 * 1024


def read_payload(source: str | None) -> dict[str, Any]:
    """The payload from a file, or ``-`` for standard input; {} without one."""
    if source is None:
        return {}
    where = "standard input" if source == "-" else source
    try:
        data = sys.stdin.buffer.read(MAX_PAYLOAD + 1) if source == "-" else _read_file(Path(source))
    except FileNotFoundError:
        raise UsageError(f"--payload {source}: no such file") from None
    if len(data) > MAX_PAYLOAD:
        raise UsageError(
            f"--payload {where}: larger than 1 MB", hint="send a smaller payload, or a reference to the data"
        )
    try:
        payload = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        at = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise UsageError(f"--payload {where}: not JSON{at}: {getattr(e, 'msg', e)}") from None
    if not isinstance(payload, dict):
        raise UsageError(f"--payload {where}: must be a JSON object, got {type(payload).__name__}")
    return payload


def _read_file(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_PAYLOAD + 1)


def apply_sets(payload: dict[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """``--set a.b=value``: value parsed as JSON when it is JSON (numbers, true, lists), else a string."""
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE", hint="e.g. --set pull_request.number=42")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = payload
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return payload


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def build_event(
    name: str,
    payload: dict[str, Any],
    *,
    branch: str | None,
    labels: Sequence[str],
    changed_files: Sequence[str],
    user: str,
    dry_run: bool,
) -> EventInfo:
    if not name.strip():
        raise UsageError("the event needs a NAME", hint="e.g. orchestrate event emit pull_request.merged")
    if len(json.dumps(payload)) > MAX_PAYLOAD:
        raise UsageError("the payload is larger than 1 MB after --set")
    if branch is None:
        raw = payload.get("branch") or payload.get("ref")
        branch = raw.removeprefix("refs/heads/") if isinstance(raw, str) else None
    found_labels = tuple(labels) or _strings(payload.get("labels")) or ()
    files = tuple(changed_files) or _strings(payload.get("changed_files")) or _strings(payload.get("files"))
    return EventInfo(
        id=new_run_id(),
        name=name,
        payload=payload,
        created_at=time.time(),
        branch=branch,
        labels=found_labels,
        changed_files=files,
        emitted_by=user,
        dry_run=dry_run,
    )


@dataclass(frozen=True)
class Match:
    pipeline: str
    enabled: bool
    trigger: TriggerSpec | None  # the first trigger that matched
    reason: str  # why it did not match (or "matched")
    variables: Mapping[str, str]


def match_pipeline(spec: PipelineSpec, enabled: bool, event: EventInfo) -> Match:
    from orchestrate.spec.when import WhenContext, evaluate

    reasons = []
    for trigger in spec.triggers:
        if trigger.event is None:
            continue
        if trigger.event != event.name:
            reasons.append(f"listens to {trigger.event}")
            continue
        condition: dict[str, Any] = {}
        if trigger.branches:
            condition["branch"] = list(trigger.branches)
        if trigger.paths:
            condition["paths"] = list(trigger.paths)
        ctx = WhenContext(branch=event.branch, changed_files=event.changed_files, labels=event.labels)
        decision = evaluate(condition, ctx)
        if not decision.run:
            reasons.append(decision.reason.replace("when.", "trigger.", 1))
            continue
        variables = {}
        for key, template in trigger.variables.items():
            try:
                variables[key] = interpolate(template, event.lookup, shell=False)
            except KeyError as e:
                raise UsageError(
                    f"pipeline {spec.name}: trigger variable {key}: the event has no {e.args[0]}",
                    hint="add it to the payload, or --set it",
                ) from None
        why = "matched" if enabled else "matched, but the pipeline is disabled"
        return Match(spec.name, enabled, trigger, why, variables)
    return Match(spec.name, enabled, None, "; ".join(reasons) or "no event trigger", {})


def emit(settings: Settings, store: Store, event: EventInfo) -> list[tuple[Match, str | None]]:
    """Store the event and start (detached) each enabled pipeline it triggers; (match, run id or None)."""
    from orchestrate.services import registry, runs
    from orchestrate.services.concurrency import Decision, admit
    from orchestrate.services.definitions import check_runnable

    rows = [row for row in registry.sync(settings, store) if row.spec is not None and row.path is not None]
    matches = [
        match_pipeline(row.spec, row.info is None or row.info.enabled, event) for row in rows if row.spec
    ]
    store.add_event(event)
    started: list[tuple[Match, str | None]] = []
    for m in matches:
        if m.trigger is None or not m.enabled or event.dry_run:
            started.append((m, None))
            continue
        info = store.version(m.pipeline)
        assert info is not None  # sync registered every valid file
        spec = PipelineSpec.from_dict(json.loads(info.compiled))
        try:
            check_runnable(spec)
        except FeatureNotAvailable as e:  # one pipeline this version cannot run must not stop the others
            started.append((dataclasses.replace(m, reason=e.message), None))
            continue
        run_id = new_run_id()
        store.create_run(
            run_id,
            spec.name,
            info.version,
            spec.digest,
            {**spec.variables, **m.variables},
            spec.stage_names,
            time.time(),
            trigger=f"event:{event.name}",
            started_by=event.emitted_by,
            event_id=event.id,
        )
        admission = admit(store, run_id, spec.name, spec.concurrency)  # issue 11: concurrency
        if admission.decision is Decision.START:
            runs.detach(settings, run_id, None)
        elif admission.message:
            m = dataclasses.replace(m, reason=admission.message)
        started.append((m, run_id))
    return started
