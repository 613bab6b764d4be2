"""The run-state reducer: RunState = fold(apply, events).

The live view folds the engine's events; ``pipeline status`` reads the same
state back from the store. Both render through one function, so they agree.
Durations are derived from start and end times, never stored.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrate.domain.events import (
    BudgetChecked,
    RunEvent,
    RunFinished,
    RunStarted,
    RunWaiting,
    StageFinished,
    StageLogLine,
    StageRolledBack,
    StageSkipped,
    StageStarted,
    StageWaiting,
)
from orchestrate.domain.status import RUN_TERMINAL, STAGE_TERMINAL, RunStatus, StageStatus


@dataclass(frozen=True)
class AttemptState:
    attempt: int
    started_at: float
    finished_at: float | None = None
    status: StageStatus = StageStatus.RUNNING
    exit_code: int | None = None
    error: str | None = None
    log_path: str = ""
    pid: int | None = None


@dataclass(frozen=True)
class StageState:
    name: str
    status: StageStatus = StageStatus.PENDING
    attempts: tuple[AttemptState, ...] = ()
    reason: str | None = None  # why skipped, or the last error
    last_line: str = ""
    outputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def attempt(self) -> int:
        return len(self.attempts)

    @property
    def started_at(self) -> float | None:
        return self.attempts[0].started_at if self.attempts else None

    @property
    def finished_at(self) -> float | None:
        if self.status in STAGE_TERMINAL and self.attempts:
            return self.attempts[-1].finished_at
        return None

    def duration(self, now: float | None = None) -> float | None:
        start = self.started_at
        if start is None:
            return None
        end = self.finished_at
        if end is None:
            end = time.time() if now is None else now
        return max(0.0, end - start)


@dataclass(frozen=True)
class RunState:
    run_id: str
    pipeline: str
    stages: Mapping[str, StageState]
    status: RunStatus = RunStatus.PENDING
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    pid: int | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None
    heartbeat_at: float | None = None
    started_by: str | None = None
    triggered_by: str | None = None
    parent_run_id: str | None = None
    event_id: str | None = None  # the event that started it
    # The pipeline version it runs: known to the store, not to events, so not compared.
    version: int = field(default=0, compare=False)
    budgets: Mapping[str, BudgetChecked] = field(default_factory=dict)  # the latest check per scope

    @classmethod
    def new(
        cls,
        run_id: str,
        pipeline: str,
        stage_names: Iterable[str],
        created_at: float,
        variables: Mapping[str, str] | None = None,
    ) -> RunState:
        return cls(
            run_id=run_id,
            pipeline=pipeline,
            stages={n: StageState(n) for n in stage_names},
            created_at=created_at,
            variables=dict(variables or {}),
        )

    def duration(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            end = time.time() if now is None else now
        return max(0.0, end - self.started_at)

    @property
    def done(self) -> bool:
        return self.status in RUN_TERMINAL


def _replace_stage(state: RunState, stage: StageState) -> RunState:
    stages = dict(state.stages)
    stages[stage.name] = stage
    return dataclasses.replace(state, stages=stages)


def apply(state: RunState, event: RunEvent) -> RunState:
    """The next state after ``event``. Pure: returns a new RunState."""
    if isinstance(event, RunStarted):
        return dataclasses.replace(
            state,
            status=RunStatus.RUNNING,
            started_at=state.started_at if state.started_at is not None else event.at,
            pid=event.pid,
            host=event.host,
            heartbeat_at=event.at,
            finished_at=None,
            reason=None,
        )
    if isinstance(event, RunFinished):
        return dataclasses.replace(state, status=event.status, finished_at=event.at, reason=event.reason)
    if isinstance(event, RunWaiting):
        return dataclasses.replace(
            state, status=RunStatus.WAITING_APPROVAL if event.waiting else RunStatus.RUNNING
        )
    if isinstance(event, BudgetChecked):
        return dataclasses.replace(state, budgets={**state.budgets, event.scope: event})
    stage = state.stages.get(event.stage) or StageState(event.stage)
    if isinstance(event, StageStarted):
        attempt = AttemptState(event.attempt, event.at, log_path=event.log_path, pid=event.pid)
        stage = dataclasses.replace(
            stage,
            status=StageStatus.RUNNING,
            attempts=(*stage.attempts, attempt),
            reason=None,
        )
    elif isinstance(event, StageFinished):
        attempts = list(stage.attempts)
        if attempts and attempts[-1].attempt == event.attempt:
            attempts[-1] = dataclasses.replace(
                attempts[-1],
                finished_at=event.at,
                status=event.status,
                exit_code=event.exit_code,
                error=event.error,
            )
        stage = dataclasses.replace(
            stage,
            status=StageStatus.RUNNING if event.will_retry else event.status,
            attempts=tuple(attempts),
            reason=event.error,
            outputs=dict(event.outputs) if event.outputs else stage.outputs,
        )
    elif isinstance(event, StageRolledBack):
        stage = dataclasses.replace(stage, status=StageStatus.ROLLED_BACK, reason=event.reason)
    elif isinstance(event, StageWaiting):
        stage = dataclasses.replace(stage, status=StageStatus.WAITING_APPROVAL, reason=event.reason)
    elif isinstance(event, StageSkipped):
        stage = dataclasses.replace(stage, status=StageStatus.SKIPPED, reason=event.reason)
    elif isinstance(event, StageLogLine):
        stage = dataclasses.replace(stage, last_line=event.line)
    return _replace_stage(state, stage)


def fold(state: RunState, events: Iterable[RunEvent]) -> RunState:
    for event in events:
        state = apply(state, event)
    return state
