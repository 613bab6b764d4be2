"""RunWriter: the store as the engine's event sink, on the run's hot path.

Each event is one short transaction that appends its ``run_events`` row and updates
the current-state rows (runs / stages / stage_attempts) the same way
``domain.state.apply`` updates a RunState, so ``Store.run_state`` read back from
those rows equals the fold of the events. Plain sqlite3 statements (``sql.py``) keep
a transition near 0.05 ms; an ORM session would cost about 1 ms.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from orchestrate.domain.events import (
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
    kind_of,
)
from orchestrate.domain.metrics import TaskMetric
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import metrics as task_metrics
from orchestrate.store import sql
from orchestrate.store.db import Database


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _payload_fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.name != "run_id")
    return names


def payload(event: RunEvent) -> dict[str, Any]:
    """What ``domain.events.to_record`` stores for ``event``, about 8 µs faster.

    to_record goes through ``dataclasses.asdict``, whose recursive deep copy was a
    sixth of a transition's cost. Events are flat (scalars plus the ``outputs``
    mapping), so a shallow copy is the same value; tests/store/test_writer.py checks
    this against to_record for every event kind.
    """
    data = {name: getattr(event, name) for name in _payload_fields(type(event))}
    if "outputs" in data:
        data["outputs"] = dict(data["outputs"])
    return data


# Turns a transition into the task-metric row it produces, if any (services.metrics_sink).
Measure = Callable[[RunEvent], TaskMetric | None]


class RunWriter:
    """Records one run's events (implements ``domain.events.EventSink``).

    Built by ``Store.writer``, which checks that the run exists. Safe to share with
    other users of the same Store: every transaction holds the Store's lock.
    """

    def __init__(self, db: Database, run_id: str, measure: Measure | None = None) -> None:
        self._db = db
        self.run_id = run_id
        self.measure = measure

    def emit(self, event: RunEvent) -> None:
        if isinstance(event, StageLogLine):
            return  # shown live only; the full output is in the stage's log file
        if event.run_id != self.run_id:
            raise ValueError(f"event for run {event.run_id} sent to the writer of run {self.run_id}")
        record = (event.run_id, event.at, kind_of(event), dumps(payload(event)), event.run_id)
        metric = self.measure(event) if self.measure is not None else None
        with self._db.write() as conn:
            conn.execute(sql.INSERT_EVENT, record)
            _apply(conn, event)
            if metric is not None:  # a finished attempt's metric: in the same transaction, not one more
                task_metrics.insert(conn, (metric,))


def _apply(conn: sqlite3.Connection, event: RunEvent) -> None:
    """Update the current-state rows for ``event``, inside the caller's transaction."""
    if isinstance(event, StageStarted):
        _update_stage(
            conn,
            sql.STAGE_STARTED,
            (StageStatus.RUNNING.value, event.attempt, event.at, event.run_id, event.stage),
            event.run_id,
            event.stage,
        )
        conn.execute(
            sql.INSERT_ATTEMPT,
            (
                event.run_id,
                event.stage,
                event.attempt,
                event.at,
                StageStatus.RUNNING.value,
                event.log_path,
                event.command,
                event.pid,
            ),
        )
    elif isinstance(event, StageFinished):
        conn.execute(
            sql.FINISH_ATTEMPT,
            (
                event.at,
                StageStatus(event.status).value,
                event.exit_code,
                event.error,
                event.run_id,
                event.stage,
                event.attempt,
            ),
        )
        status = StageStatus.RUNNING if event.will_retry else StageStatus(event.status)
        _update_stage(
            conn,
            sql.STAGE_FINISHED,
            (
                status.value,
                None if event.will_retry else event.at,
                event.error,
                dumps(dict(event.outputs)) if event.outputs else None,
                event.run_id,
                event.stage,
            ),
            event.run_id,
            event.stage,
        )
    elif isinstance(event, StageSkipped):
        _update_stage(
            conn,
            sql.STAGE_SKIPPED,
            (StageStatus.SKIPPED.value, event.reason, event.at, event.run_id, event.stage),
            event.run_id,
            event.stage,
        )
    elif isinstance(event, RunStarted):
        conn.execute(
            sql.RUN_STARTED,
            (RunStatus.RUNNING.value, event.at, event.pid, event.host, event.at, event.run_id),
        )
    elif isinstance(event, StageRolledBack):
        _update_stage(
            conn,
            sql.STAGE_STATUS_REASON,
            (StageStatus.ROLLED_BACK.value, event.reason, event.run_id, event.stage),
            event.run_id,
            event.stage,
        )
    elif isinstance(event, StageWaiting):
        _update_stage(
            conn,
            sql.STAGE_STATUS_REASON,
            (StageStatus.WAITING_APPROVAL.value, event.reason, event.run_id, event.stage),
            event.run_id,
            event.stage,
        )
    elif isinstance(event, RunWaiting):
        run_status = RunStatus.WAITING_APPROVAL if event.waiting else RunStatus.RUNNING
        conn.execute(sql.RUN_WAITING, (run_status.value, event.run_id))
    elif isinstance(event, RunFinished):
        conn.execute(sql.RUN_FINISHED, (RunStatus(event.status).value, event.at, event.reason, event.run_id))


def _update_stage(
    conn: sqlite3.Connection, statement: str, params: tuple[object, ...], run_id: str, stage: str
) -> None:
    # The reducer creates a stage it has not seen; so does the store, after the others.
    if conn.execute(statement, params).rowcount == 0:
        conn.execute(sql.INSERT_STAGE_LAST, (run_id, stage, StageStatus.PENDING.value, run_id))
        conn.execute(statement, params)
