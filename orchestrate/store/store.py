"""Store: the one source of truth for pipeline versions and runs (DESIGN §3, §10).

Everything here runs on ``pipeline run``'s start-up path, so it speaks sqlite3 to
the SQLModel-defined tables and imports SQLModel only to create or migrate the
schema (``db.py``). Heavier queries for later commands (history, metrics) may use
SQLModel sessions over ``tables.py``; they must return domain objects too.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orchestrate.domain.approvals import ApprovalRequest, AuditEntry, RequestStatus
from orchestrate.domain.events import RunEvent
from orchestrate.domain.records import EventInfo, PipelineInfo, RunSummary, VersionInfo
from orchestrate.domain.state import RunState, StageState
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import approvals, control, reads, registry, sql
from orchestrate.store import metrics as task_metrics
from orchestrate.store.db import Database
from orchestrate.store.experiments import Experiments
from orchestrate.store.writer import Measure, RunWriter, dumps

if TYPE_CHECKING:  # imported when first used: a run needs none of them (start-up, bench/run.py)
    from orchestrate.store.reported import Reports
    from orchestrate.store.review import ReviewStore
    from orchestrate.store.scheduling import Scheduling


def open_store(db_path: str | Path) -> Store:
    """Open (creating the file, its folder and its schema if needed) the store at ``db_path``.

    ``db_path`` is the SQLite file, or a ``postgresql+psycopg://`` URL (``store.pg``).
    """
    if isinstance(db_path, str) and db_path.startswith("postgres"):
        from orchestrate.store.pg import PgDatabase

        return Store(PgDatabase(db_path))  # type: ignore[arg-type]
    return Store(Database(Path(db_path)))


class Store:
    """One connection to the store file; close it (or use ``with``) when done."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.path = db.path

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- pipeline versions --------------------------------------------------------------

    def compiled_definition(self, pipeline: str, digest: str) -> tuple[int, str] | None:
        """(version, compiled JSON) when this exact definition text was registered before."""
        with self._db.read() as conn:
            row = conn.execute(sql.SELECT_COMPILED, (pipeline, digest)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def register_version(self, pipeline: str, digest: str, path: str, text: str, compiled: str) -> int:
        """The version number of this definition, registering it (max + 1) if its digest is new."""
        now = time.time()
        with self._db.write() as conn:
            conn.execute(sql.INSERT_PIPELINE, (pipeline, now, now))
            conn.execute(sql.UNDELETE_PIPELINE, (pipeline,))
            row = conn.execute(sql.SELECT_VERSION, (pipeline, digest)).fetchone()
            if row is not None:
                return int(row[0])
            version = int(conn.execute(sql.SELECT_LAST_VERSION, (pipeline,)).fetchone()[0]) + 1
            conn.execute(sql.INSERT_VERSION, (pipeline, version, digest, path, text, compiled, now))
            conn.execute(sql.TOUCH_PIPELINE, (now, pipeline))
            return version

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        pipeline: str,
        version: int,
        digest: str,
        variables: Mapping[str, str],
        stage_names: Sequence[str],
        created_at: float,
        trigger: str | None = None,
        parent_run_id: str | None = None,
        started_by: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """The run row (pending) and one pending row per stage, in file order, at once.

        ``version`` must have been registered (``register_version``): the run points
        at the exact definition text it starts with.
        """
        with self._db.write() as conn:
            conn.execute(
                sql.INSERT_RUN,
                (
                    run_id,
                    pipeline,
                    version,
                    digest,
                    RunStatus.PENDING.value,
                    dumps(dict(variables)),
                    created_at,
                    trigger,
                    parent_run_id,
                    started_by,
                    event_id,
                ),
            )
            conn.executemany(
                sql.INSERT_STAGE,
                [
                    (run_id, name, position, StageStatus.PENDING.value)
                    for position, name in enumerate(stage_names)
                ],
            )

    def writer(self, run_id: str, measure: Measure | None = None) -> RunWriter:
        """The event sink that records ``run_id``'s transitions (and, with ``measure``, their metrics)."""
        with self._db.read() as conn:
            reads.require_run(conn, run_id)
        return RunWriter(self._db, run_id, measure)

    def heartbeat(self, run_id: str, at: float) -> None:
        """Mark the run's process as alive; a run whose heartbeat stops is stale."""
        with self._db.write() as conn:
            if conn.execute(sql.HEARTBEAT, (at, run_id)).rowcount == 0:
                raise reads.unknown_run(run_id)

    # -- reads --------------------------------------------------------------------------

    def run_state(self, run_id: str) -> RunState:
        with self._db.read() as conn:
            return reads.run_state(conn, run_id)

    def run_events(self, run_id: str) -> list[RunEvent]:
        with self._db.read() as conn:
            return reads.run_events(conn, run_id)

    def run_definition(self, run_id: str) -> tuple[str, str]:
        """(text, digest) of the definition the run was started with."""
        with self._db.read() as conn:
            return reads.run_definition(conn, run_id)

    def run_record(self, run_id: str, now: float | None = None) -> dict[str, Any]:
        with self._db.read() as conn:
            return reads.run_record(conn, run_id, now)

    def resolve_run_id(self, prefix: str) -> str:
        with self._db.read() as conn:
            return reads.resolve_run_id(conn, prefix)

    # -- the registry ---------------------------------------------------------------------

    def pipelines(self) -> list[PipelineInfo]:
        with self._db.read() as conn:
            return registry.pipelines(conn)

    def pipeline(self, name: str) -> PipelineInfo | None:
        with self._db.read() as conn:
            return registry.pipeline(conn, name)

    def versions(self, name: str) -> list[VersionInfo]:
        with self._db.read() as conn:
            return registry.versions(conn, name)

    def version(self, name: str, number: int | None = None) -> VersionInfo | None:
        """One registered version with its text (the latest when ``number`` is None)."""
        with self._db.read() as conn:
            return registry.version(conn, name, number)

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self._db.write() as conn:
            conn.execute(sql.SET_ENABLED, (bool(enabled), time.time(), name))

    def mark_deleted(self, name: str) -> None:
        now = time.time()
        with self._db.write() as conn:
            conn.execute(sql.SET_DELETED, (now, now, name))

    def history(self, name: str, limit: int = 20, status: RunStatus | None = None) -> list[RunSummary]:
        with self._db.read() as conn:
            return registry.history(conn, name, limit, status)

    def run_usage(self, run_ids: Sequence[str]) -> dict[str, tuple[int, float]]:
        """(tokens, cost in USD) each run's stages reported; runs that reported none are left out."""
        out: dict[str, tuple[int, float]] = {}
        with self._db.read() as conn:
            for run_id in run_ids:
                tokens_in, tokens_out, cost = conn.execute(sql.RUN_USAGE, (run_id,)).fetchone()
                if tokens_in or tokens_out or cost:
                    out[run_id] = (int(tokens_in or 0) + int(tokens_out or 0), float(cost or 0))
        return out

    def active_runs(self) -> list[RunSummary]:
        with self._db.read() as conn:
            return registry.active_runs(conn)

    def last_updates(self, run_ids: Sequence[str]) -> dict[str, float]:
        """When each run last changed (its newest event); runs with no event are left out."""
        out: dict[str, float] = {}
        with self._db.read() as conn:
            for run_id in run_ids:
                row = conn.execute(sql.RUN_LAST_EVENT_AT, (run_id,)).fetchone()
                if row is not None:
                    out[run_id] = float(row[0])
        return out

    def past_durations(self, pipeline: str, stage: str, limit: int = 200) -> list[float]:
        """The durations of the stage's last ``limit`` completed attempts, newest first."""
        with self._db.read() as conn:
            rows = conn.execute(sql.STAGE_PAST_DURATIONS, (stage, pipeline, "completed", limit))
            return [float(d) for (d,) in rows]

    # -- control --------------------------------------------------------------------------

    def request_cancel(self, run_id: str, by: str) -> bool:
        with self._db.write() as conn:
            return control.request_cancel(conn, run_id, by, time.time())

    def clear_cancel(self, run_id: str) -> None:
        with self._db.write() as conn:
            conn.execute(sql.CLEAR_CANCEL, (run_id,))

    def cancel_request(self, run_id: str) -> tuple[float, str] | None:
        with self._db.read() as conn:
            return control.cancel_request(conn, run_id)

    def claim(self, run_id: str, previous: tuple[int | None, str | None], pid: int, host: str) -> bool:
        with self._db.write() as conn:
            return control.claim(conn, run_id, previous, pid, host, time.time())

    def prunable(self, before: float | None, keep_runs: int | None) -> list[str]:
        with self._db.read() as conn:
            return control.prunable(conn, before, keep_runs)

    def delete_run(self, run_id: str) -> None:
        with self._db.write() as conn:
            control.delete_run(conn, run_id)

    # -- import ---------------------------------------------------------------------------

    def add_event(self, event: EventInfo) -> None:
        with self._db.write() as conn:
            conn.execute(
                sql.INSERT_EVENT_RECORD,
                (
                    event.id,
                    event.name,
                    dumps(dict(event.payload)),
                    event.branch,
                    dumps(list(event.labels)),
                    None if event.changed_files is None else dumps(list(event.changed_files)),
                    event.created_at,
                    event.emitted_by,
                    bool(event.dry_run),
                ),
            )

    def event(self, event_id: str) -> EventInfo | None:
        with self._db.read() as conn:
            row = conn.execute(sql.SELECT_EVENT_RECORD, (event_id,)).fetchone()
        return _event(row) if row else None

    def events(self, limit: int = 20) -> list[EventInfo]:
        with self._db.read() as conn:
            return [_event(row) for row in conn.execute(sql.SELECT_EVENT_RECORDS, (limit,))]

    def runs_of_event(self, event_id: str) -> list[RunSummary]:
        with self._db.read() as conn:
            return [registry.run_summary(row) for row in conn.execute(sql.RUNS_OF_EVENT, (event_id,))]

    # -- approvals ------------------------------------------------------------------------

    def open_approval(self, request: ApprovalRequest, entry: AuditEntry) -> None:
        with self._db.write() as conn:
            approvals.insert(conn, request)
            approvals.append(conn, request.id, entry)

    def approval(self, request_id: str) -> ApprovalRequest:
        with self._db.read() as conn:
            return approvals.get(conn, approvals.resolve(conn, request_id))

    def approval_audit(self, request_id: str) -> list[AuditEntry]:
        with self._db.read() as conn:
            return approvals.audit(conn, request_id)

    def stage_approvals(self, run_id: str, stage: str) -> list[ApprovalRequest]:
        with self._db.read() as conn:
            return [
                approvals.request_from(r) for r in conn.execute(sql.SELECT_STAGE_APPROVALS, (run_id, stage))
            ]

    def approval_requests(self, pending_only: bool = False, limit: int = 50) -> list[ApprovalRequest]:
        with self._db.read() as conn:
            if pending_only:
                rows = conn.execute(sql.SELECT_PENDING_APPROVALS, (RequestStatus.PENDING.value, limit))
            else:
                rows = conn.execute(sql.SELECT_APPROVAL_REQUESTS, (limit,))
            return [approvals.request_from(r) for r in rows]

    def approval_step(
        self, request_id: str, step: Callable[[ApprovalRequest, list[AuditEntry]], approvals.Step]
    ) -> ApprovalRequest:
        """Apply a vote, delegation, timeout... atomically: read, decide, append, record, in one transaction."""
        with self._db.write() as conn:
            return approvals.transact(conn, approvals.resolve(conn, request_id), time.time(), step)

    def escalate_approval(self, request_id: str, deadline: float | None, entry: AuditEntry) -> None:
        with self._db.write() as conn:
            conn.execute(sql.ESCALATE_APPROVAL, (deadline, request_id))
            approvals.append(conn, request_id, entry)

    def set_run_version(self, run_id: str, version: int, digest: str) -> None:
        """Point a run at another registered definition (resume --use-current-definition)."""
        with self._db.write() as conn:
            conn.execute(sql.SET_RUN_VERSION, (version, digest, run_id))

    def copy_stages(self, run_id: str, stages: Sequence[StageState], reason: str) -> None:
        """Give a new run the settled results of another run's stages (a fork reuses them)."""
        with self._db.write() as conn:
            for stage in stages:
                _import_stage(conn, run_id, stage, reason)

    def import_run(self, state: RunState, version: int, digest: str) -> None:
        """Re-create a run (from a checkpoint) exactly as it stood, in one transaction.

        The definition ``version`` must be registered first. A parent run this store
        does not hold is dropped from the link.
        """
        with self._db.write() as conn:
            parent = state.parent_run_id
            if parent is not None and conn.execute(sql.RUN_EXISTS, (parent,)).fetchone() is None:
                parent = None
            conn.execute(
                sql.INSERT_RUN,
                (
                    state.run_id,
                    state.pipeline,
                    version,
                    digest,
                    state.status.value,
                    dumps(dict(state.variables)),
                    state.created_at,
                    state.triggered_by,
                    parent,
                    state.started_by,
                    None,  # the event is not part of a checkpoint
                ),
            )
            conn.execute(
                sql.IMPORT_RUN_STATE,
                (state.status.value, state.started_at, state.finished_at, state.reason, state.run_id),
            )
            for position, stage in enumerate(state.stages.values()):
                conn.execute(sql.INSERT_STAGE, (state.run_id, stage.name, position, stage.status.value))
                _import_stage(conn, state.run_id, stage, stage.reason)

    # -- task metrics (DESIGN §8) -----------------------------------------------------------

    def record_metric(self, metric: task_metrics.TaskMetric) -> None:
        """One task metric row (a finished stage attempt, or `orchestrate metrics record`)."""
        with self._db.write() as conn:
            task_metrics.insert(conn, (metric,))

    def record_metrics(self, metrics: task_metrics.Metrics) -> int:
        """Many rows in one transaction (one executemany); how many."""
        with self._db.write() as conn:
            return task_metrics.insert(conn, metrics)

    def metrics_reader(self) -> task_metrics.Snapshot:
        """``with store.metrics_reader() as reader:`` the aggregate reads, over one snapshot."""
        return task_metrics.snapshot(self._db)

    # -- reported pipelines (DESIGN §7) ------------------------------------------------------

    def reports(self) -> Reports:
        """Agents' self-reported pipelines, steps and jobs, over this store's connection."""
        from orchestrate.store.reported import Reports

        return Reports(self._db)

    # -- goals and review (DESIGN §8) ----------------------------------------------------------

    def review(self) -> ReviewStore:
        """Goals, the review's reads of recent history, and the actions it scheduled."""
        from orchestrate.store.review import ReviewStore

        return ReviewStore(self._db)

    # -- the worker and schedules (issue 11) -------------------------------------------------

    def scheduling(self) -> Scheduling:
        """Cron slots, the run queue and the worker's launches, over this store's connection."""
        from orchestrate.store.scheduling import Scheduling

        return Scheduling(self._db)

    def experiments(self) -> Experiments:
        """Run variants and the history experiments and budgets read (issue 10)."""
        return Experiments(self._db)


def _event(row: Any) -> EventInfo:
    eid, name, payload, branch, labels, changed, created, by, dry = row
    return EventInfo(
        id=eid,
        name=name,
        payload=json.loads(payload),
        branch=branch,
        labels=tuple(json.loads(labels)),
        changed_files=None if changed is None else tuple(json.loads(changed)),
        created_at=created,
        emitted_by=by,
        dry_run=bool(dry),
    )


def _import_stage(conn: sqlite3.Connection, run_id: str, stage: StageState, reason: str | None) -> None:
    conn.execute(
        sql.IMPORT_STAGE_STATE,
        (
            stage.status.value,
            stage.attempt,
            stage.started_at,
            stage.finished_at,
            reason,
            dumps(dict(stage.outputs)),
            run_id,
            stage.name,
        ),
    )
    for a in stage.attempts:
        conn.execute(
            sql.IMPORT_ATTEMPT,
            (
                run_id,
                stage.name,
                a.attempt,
                a.started_at,
                a.finished_at,
                a.status.value,
                a.exit_code,
                a.error,
                a.log_path,
            ),
        )
