"""What happens in a run, as past-tense facts, and the sink the engine reports to.

The engine knows nothing of storage: it calls ``sink.emit(event)`` for each
transition. The CLI wires sinks together (the SQLite store, the live view, the
plain or JSON reporter). ``to_record``/``from_record`` give the stored form of
the ``run_events`` table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrate.domain.status import RunStatus, StageStatus


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    at: float
    pid: int
    host: str | None = None  # where the run process lives: a pid means nothing elsewhere


@dataclass(frozen=True)
class StageStarted:
    run_id: str
    stage: str
    attempt: int
    at: float
    log_path: str
    command: str | None = None
    pid: int | None = None  # the stage's process (and process group), when it is one


@dataclass(frozen=True)
class StageFinished:
    """One attempt ended. ``will_retry`` keeps the stage running for another attempt."""

    run_id: str
    stage: str
    attempt: int
    at: float
    status: StageStatus
    exit_code: int | None = None
    error: str | None = None
    will_retry: bool = False
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StageSkipped:
    run_id: str
    stage: str
    at: float
    reason: str


@dataclass(frozen=True)
class StageRolledBack:
    """The stage's effects were undone (or it had nothing to undo)."""

    run_id: str
    stage: str
    at: float
    reason: str


@dataclass(frozen=True)
class StageWaiting:
    """The stage reached its approval gate: it waits for request ``request_id``."""

    run_id: str
    stage: str
    at: float
    request_id: str
    reason: str  # what to type to decide it


@dataclass(frozen=True)
class RunWaiting:
    """The run waits for approvals (nothing else runs), or goes on again (``waiting`` False)."""

    run_id: str
    at: float
    waiting: bool


@dataclass(frozen=True)
class StageLogLine:
    """The latest line a stage printed. Shown live, never stored."""

    run_id: str
    stage: str
    line: str


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    at: float
    status: RunStatus
    reason: str | None = None


@dataclass(frozen=True)
class BudgetChecked:
    """A budget was checked (issue 10): before ``stage`` starts (with its forecast), or as its usage arrived.

    ``scope`` is "run" (the pipeline's budget) or the stage's name (its own budget).
    """

    run_id: str
    at: float
    scope: str
    stage: str
    spent_cost_usd: float
    spent_tokens: int
    limit_cost_usd: float | None = None
    limit_tokens: int | None = None
    forecast_cost_usd: float | None = None
    forecast_tokens: int | None = None
    forecast_note: str = ""
    exceeded: bool = False
    action: str = ""  # the on_exceed that applied: halt | continue | approval ("" when within)
    message: str = ""


RunEvent = (
    RunStarted
    | StageStarted
    | StageFinished
    | StageSkipped
    | StageWaiting
    | StageRolledBack
    | RunWaiting
    | StageLogLine
    | RunFinished
    | BudgetChecked
)

_KINDS: dict[str, type] = {
    "run_started": RunStarted,
    "stage_started": StageStarted,
    "stage_finished": StageFinished,
    "stage_skipped": StageSkipped,
    "stage_waiting": StageWaiting,
    "stage_rolled_back": StageRolledBack,
    "run_waiting": RunWaiting,
    "run_finished": RunFinished,
    "budget_checked": BudgetChecked,
}
_NAMES = {cls: name for name, cls in _KINDS.items()}


def kind_of(event: RunEvent) -> str:
    return _NAMES[type(event)]


def to_record(event: RunEvent) -> tuple[str, dict[str, Any]]:
    """(kind, JSON-ready payload) for the append-only ``run_events`` table."""
    data = dataclasses.asdict(event)
    data.pop("run_id")
    if "outputs" in data:
        data["outputs"] = dict(data["outputs"])
    return kind_of(event), data


def from_record(run_id: str, kind: str, payload: Mapping[str, Any]) -> RunEvent:
    cls = _KINDS[kind]
    data = dict(payload)
    if "status" in data:
        data["status"] = (RunStatus if cls is RunFinished else StageStatus)(data["status"])
    return cls(run_id=run_id, **data)  # type: ignore[no-any-return]


class EventSink(Protocol):
    def emit(self, event: RunEvent) -> None: ...


class FanOut:
    """Sends each event to several sinks in order (the store first, so views never run ahead of it)."""

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self.sinks = tuple(sinks)

    def emit(self, event: RunEvent) -> None:
        for sink in self.sinks:
            sink.emit(event)


class Recorder:
    """Keeps every event in memory: the engine's test double for the store."""

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def emit(self, event: RunEvent) -> None:
        self.events.append(event)
