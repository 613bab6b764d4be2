"""The typed model of a pipeline definition (DESIGN §2).

Produced by ``orchestrate.spec.loader.load_pipeline`` after schema and semantic
validation; never built from unvalidated input elsewhere. ``to_dict``/``from_dict``
round-trip it through JSON so a compiled definition can be cached by its digest
and the run path need not import the validator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrate.domain.status import OnFailure


class StageKind(StrEnum):
    RUN = "run"  # a shell command
    AGENT = "agent"  # an agent from orchestrate.yaml with a task
    PYTHON = "python"  # pkg.mod:func
    USES = "uses"  # another pipeline as a child run
    GATE = "gate"  # a pure approval gate: no work of its own


@dataclass(frozen=True)
class RetrySpec:
    max: int = 0
    backoff: float = 5.0  # seconds before the 2nd attempt; doubles each time, with jitter
    exit_codes: tuple[int, ...] | None = None  # retry only for these codes (None: any failure)


@dataclass(frozen=True)
class StageSpec:
    name: str
    kind: StageKind
    needs: tuple[str, ...]  # resolved dependencies (DESIGN §2 "Order")
    line: int = 0  # where the stage starts in its file
    run: str | None = None
    agent: str | None = None
    task: str | None = None
    python: str | None = None
    uses: str | None = None
    with_: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None  # seconds; None: the pipeline default
    retry: RetrySpec = RetrySpec()
    on_failure: OnFailure = OnFailure.HALT
    optional: bool = False
    depends_on: tuple[str, ...] | None = None  # as written
    parallel_with: str | None = None
    environment: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    requires_approval: bool = False
    approvers: tuple[str, ...] = ()
    approval: Mapping[str, Any] | None = None
    when: Mapping[str, Any] | None = None
    rollback: Mapping[str, Any] | None = None
    rollback_to: str | None = None
    repair: Mapping[str, Any] | None = None
    precheck: Mapping[str, Any] | None = None
    matrix: Mapping[str, Any] | None = None
    budget: Mapping[str, Any] | None = None
    secrets: tuple[str, ...] = ()
    group: str | None = None  # a matrix instance: the stage it was expanded from
    matrix_values: Mapping[str, str] = field(default_factory=dict)  # its ${matrix.*}
    executor: str | None = None  # local | dask; None: the agent's (orchestrate.yaml) or local


@dataclass(frozen=True)
class TriggerSpec:
    event: str | None = None
    branches: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    cron: str | None = None
    tz: str | None = None
    catchup: bool = False  # cron: after downtime fire every missed slot, not only the last one
    variables: Mapping[str, str] = field(default_factory=dict)  # set from the event: "${event.x.y}"


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    stages: tuple[StageSpec, ...]
    path: str = ""  # the file it was read from, as given
    digest: str = ""  # sha256 of the text
    text: str = ""  # the exact definition, stored with every run
    description: str = ""
    version: int = 1
    triggers: tuple[TriggerSpec, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None  # the whole run, seconds
    default_timeout: float | None = None  # defaults.timeout, seconds
    default_retry: RetrySpec = RetrySpec()
    default_on_failure: OnFailure = OnFailure.HALT
    max_parallel: int | None = None  # defaults.max_parallel
    concurrency: Mapping[str, Any] | None = None
    secrets: tuple[str, ...] = ()
    experiments: Any = None
    budget: Mapping[str, Any] | None = None
    handlers: Mapping[str, Any] | None = None
    labels: tuple[str, ...] = ()  # goals link to pipelines by label (orchestrate goal link --label)

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineSpec:
        d = dict(data)
        d["stages"] = tuple(_stage_from_dict(s) for s in d["stages"])
        d["triggers"] = tuple(
            TriggerSpec(**{**t, "branches": tuple(t["branches"]), "paths": tuple(t["paths"])})
            for t in d["triggers"]
        )
        d["default_retry"] = _retry_from_dict(d["default_retry"])
        d["default_on_failure"] = OnFailure(d["default_on_failure"])
        d["secrets"] = tuple(d["secrets"])
        d["labels"] = tuple(d.get("labels") or ())  # compiled before labels existed: none
        return cls(**d)


def _retry_from_dict(d: Mapping[str, Any]) -> RetrySpec:
    codes = d.get("exit_codes")
    return RetrySpec(
        max=d["max"], backoff=d["backoff"], exit_codes=tuple(codes) if codes is not None else None
    )


def _stage_from_dict(data: Mapping[str, Any]) -> StageSpec:
    d = dict(data)
    d["kind"] = StageKind(d["kind"])
    d["needs"] = tuple(d["needs"])
    d["retry"] = _retry_from_dict(d["retry"])
    d["on_failure"] = OnFailure(d["on_failure"])
    if d.get("depends_on") is not None:
        d["depends_on"] = tuple(d["depends_on"])
    d["approvers"] = tuple(d["approvers"])
    d["secrets"] = tuple(d["secrets"])
    return StageSpec(**d)
