"""Looking at and steering runs from any terminal: status, cancel, history."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.events import RunFinished, StageFinished
from orchestrate.domain.records import RunSummary
from orchestrate.domain.state import RunState
from orchestrate.domain.status import RUN_ACTIVE, RUN_TERMINAL, RunStatus, StageStatus
from orchestrate.services.liveness import DEAD_AFTER, process_alive

if TYPE_CHECKING:
    from orchestrate.store import Store


def orphaned(state: RunState | RunSummary, now: float | None = None) -> bool:
    """Active in the store, but no live process is running it (it crashed or was killed)."""
    if state.status not in RUN_ACTIVE or state.status is RunStatus.WAITING_APPROVAL:
        return False  # a run parked at a gate needs no process until the decision
    now = time.time() if now is None else now
    if state.pid is None:  # never claimed: a detached process gets a moment to start
        # (from its creation, or from when the worker took it off the queue: heartbeat_at)
        return now - max(state.created_at, state.heartbeat_at or 0.0) > DEAD_AFTER
    return not process_alive(state.pid, state.host, state.heartbeat_at, now)


def cancel(store: Store, run_ref: str, user: str, wait: float = 10.0) -> RunState:
    """Cancel a run: its live process stops it (within a second); a dead one's run is closed here."""
    run_id = store.resolve_run_id(run_ref)
    state = store.run_state(run_id)
    if state.status in RUN_TERMINAL:
        raise UsageError(f"run {run_id} already {state.status.value}; nothing to cancel")
    store.request_cancel(run_id, user)  # also stops a detached process that has yet to claim it
    if state.status is RunStatus.QUEUED:  # no process to wait for: it never started
        close_dead_run(store, state, f"cancelled by {user} while queued")
        return store.run_state(run_id)
    if not orphaned(state):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            state = store.run_state(run_id)
            if state.status in RUN_TERMINAL:
                return state
            time.sleep(0.05)
        if not orphaned(state):
            return state  # still stopping (a stage's grace period): the flag stays set
    close_dead_run(store, state, f"cancelled by {user} (its process was gone)")
    return store.run_state(run_id)


def close_dead_run(store: Store, state: RunState, reason: str) -> None:
    """Record the end of a run whose process died: running stages and the run become cancelled."""
    writer = store.writer(state.run_id)
    now = time.time()
    for stage in state.stages.values():
        if stage.status in (StageStatus.RUNNING, StageStatus.WAITING_APPROVAL) and stage.attempts:
            writer.emit(
                StageFinished(
                    state.run_id, stage.name, stage.attempt, now, StageStatus.CANCELLED, error=reason
                )
            )
    writer.emit(RunFinished(state.run_id, now, RunStatus.CANCELLED, reason))


def history(store: Store, name: str, limit: int, status: str | None) -> list[RunSummary]:
    wanted = None
    if status is not None:
        try:
            wanted = RunStatus(status)
        except ValueError:
            choices = ", ".join(s.value for s in RunStatus)
            raise UsageError(f"--status {status!r} is not a run status ({choices})") from None
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    runs = store.history(name, limit, wanted)
    if not runs and store.pipeline(name) is None:
        raise NotFoundError(f'unknown pipeline "{name}"', hint="orchestrate pipeline list shows them")
    return runs
