"""Reported pipelines (DESIGN §7): Pipeline → Step → Job rows, over plain sqlite3 like the run path.

Every report is one short write transaction that changes the job and carries the change
up: the step's status is recomputed from its jobs and an open pipeline's from its steps
(the rules are ``domain.observe``'s), and the pipeline's ``updated_at`` moves, which is
what staleness is judged by at read time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.observe import (
    REPORT_OPEN,
    PipelineType,
    ReportedJob,
    ReportedPipeline,
    ReportedStep,
    ReportStatus,
    aggregate,
    open_pipeline_status,
)
from orchestrate.store import sql
from orchestrate.store.db import Database, transact

T = TypeVar("T")

_LIST_HINT = "orchestrate report list shows the reported pipelines"


class Reports:
    """The reported pipelines of one store; each method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _transact(self, write: bool, body: Callable[[sqlite3.Connection], T]) -> T:
        return transact(self._db, write, body)

    # -- writes ---------------------------------------------------------------------------

    def create_pipeline(self, p: ReportedPipeline, steps: Sequence[str]) -> ReportedPipeline:
        def body(conn: sqlite3.Connection) -> ReportedPipeline:
            conn.execute(
                sql.INSERT_REPORTED_PIPELINE,
                (p.id, p.type.value, p.title, p.sprint, p.status.value, p.created_at, p.updated_at,
                 p.created_by, p.run_id, p.stage),
            )  # fmt: skip
            for name in dict.fromkeys(steps):
                _add_step(conn, p.id, name)
            return _pipeline(conn, p.id)

        return self._transact(True, body)

    def add_job(self, job: ReportedJob) -> ReportedJob:
        """The job (its step created when the pipeline has none of that name), carried up."""

        def body(conn: sqlite3.Connection) -> ReportedJob:
            _require_open(conn, job.pipeline_id)
            if conn.execute(sql.REPORTED_STEP_EXISTS, (job.pipeline_id, job.step)).fetchone() is None:
                _add_step(conn, job.pipeline_id, job.step)
            conn.execute(
                sql.INSERT_REPORTED_JOB,
                (job.id, job.pipeline_id, job.step, job.name, job.description, job.status.value,
                 job.created_at, job.started_at, job.finished_at, job.updated_at),
            )  # fmt: skip
            _propagate(conn, job.pipeline_id, job.step, job.updated_at)
            return _job(conn, job.id)

        return self._transact(True, body)

    def update_job(self, job_id: str, status: ReportStatus, summary: str | None, at: float) -> ReportedJob:
        def body(conn: sqlite3.Connection) -> ReportedJob:
            job = _job(conn, _resolve(conn, sql.REPORTED_JOB_IDS_IN_RANGE, job_id, "job"))
            _require_open(conn, job.pipeline_id)
            started = None if status is ReportStatus.PENDING else at
            finished = None if status in REPORT_OPEN else at
            conn.execute(sql.UPDATE_REPORTED_JOB, (status.value, summary, started, finished, at, job.id))
            _propagate(conn, job.pipeline_id, job.step, at)
            return _job(conn, job.id)

        return self._transact(True, body)

    def set_job_log(self, job_id: str, path: str, at: float) -> None:
        """Record where the job's log is (first append) and that the agent reported something."""

        def body(conn: sqlite3.Connection) -> None:
            job = _job(conn, job_id)
            conn.execute(sql.SET_REPORTED_JOB_LOG, (path, at, job.id))
            p = _pipeline_row(conn, job.pipeline_id)
            if p.finished_at is None:
                conn.execute(sql.TOUCH_REPORTED_PIPELINE, (p.status.value, at, p.id))

        self._transact(True, body)

    def finish(
        self, pipeline_id: str, status: ReportStatus | Callable[[list[ReportStatus]], ReportStatus],
        summary: str | None, at: float,
    ) -> ReportedPipeline:  # fmt: skip
        """Close the pipeline: jobs still open are cancelled, then ``status`` (or ``status(steps)``) is set."""

        def body(conn: sqlite3.Connection) -> ReportedPipeline:
            p = _require_open(
                conn, _resolve(conn, sql.REPORTED_PIPELINE_IDS_IN_RANGE, pipeline_id, "pipeline")
            )
            conn.execute(
                sql.CLOSE_REPORTED_JOBS,
                (ReportStatus.CANCELLED.value, at, at, at, p.id, *sorted(s.value for s in REPORT_OPEN)),
            )
            for name, _position, _status in conn.execute(sql.SELECT_REPORTED_STEPS, (p.id,)).fetchall():
                _step_status(conn, p.id, name)
            steps = [ReportStatus(s) for (s,) in conn.execute(sql.REPORTED_STEP_STATUSES, (p.id,))]
            final = status if isinstance(status, ReportStatus) else status(steps)
            conn.execute(sql.FINISH_REPORTED_PIPELINE, (final.value, at, at, summary, p.id))
            return _pipeline(conn, p.id)

        return self._transact(True, body)

    def mark_logs_cleaned(self, pipeline_ids: Sequence[str], at: float) -> None:
        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(sql.SET_REPORTED_LOGS_CLEANED, [(at, pid) for pid in pipeline_ids])

        self._transact(True, body)

    # -- reads ----------------------------------------------------------------------------

    def pipeline(self, pipeline_id: str) -> ReportedPipeline:
        """The whole tree: steps in order, each with its jobs."""
        return self._transact(
            False,
            lambda conn: _pipeline(
                conn, _resolve(conn, sql.REPORTED_PIPELINE_IDS_IN_RANGE, pipeline_id, "pipeline")
            ),
        )

    def job(self, job_id: str) -> ReportedJob:
        return self._transact(
            False, lambda conn: _job(conn, _resolve(conn, sql.REPORTED_JOB_IDS_IN_RANGE, job_id, "job"))
        )

    def pipelines(
        self,
        *,
        status: ReportStatus | None = None,
        type: PipelineType | None = None,
        sprint: str | None = None,
        stale_before: float | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[ReportedPipeline], int]:
        """A page of pipelines, newest first (without their steps), and how many match in all."""
        st, ty = (status.value if status else None), (type.value if type else None)
        stale = None if stale_before is None else 1
        running = ReportStatus.RUNNING.value
        filters = (st, st, ty, ty, sprint, sprint, stale, running, stale_before)

        def body(conn: sqlite3.Connection) -> tuple[list[ReportedPipeline], int]:
            total = int(conn.execute(sql.COUNT_REPORTED_PIPELINES, filters).fetchone()[0])
            rows = conn.execute(sql.SELECT_REPORTED_PIPELINES, (*filters, limit, offset)).fetchall()
            return [_pipeline_from(r) for r in rows], total

        return self._transact(False, body)

    def open_pipelines(self, run_id: str | None, stage: str | None) -> list[str]:
        """Unfinished pipelines, newest first: of one run's stage, or all of them (``run_id`` None)."""
        return self._transact(
            False,
            lambda conn: [r for (r,) in conn.execute(sql.OPEN_REPORTED_PIPELINES, (run_id, run_id, stage))],
        )

    def sprint_pipelines(self, sprint: str) -> list[tuple[str, float | None]]:
        """(id, finished_at) of the sprint's pipelines whose logs were not cleaned yet."""
        return self._transact(
            False,
            lambda conn: [(i, f) for i, f in conn.execute(sql.REPORTED_SPRINT_PIPELINES, (sprint,))],
        )


def _add_step(conn: sqlite3.Connection, pipeline_id: str, name: str) -> None:
    conn.execute(sql.INSERT_REPORTED_STEP, (pipeline_id, name, ReportStatus.PENDING.value, pipeline_id))


def _step_status(conn: sqlite3.Connection, pipeline_id: str, step: str) -> None:
    jobs = [ReportStatus(s) for (s,) in conn.execute(sql.REPORTED_JOB_STATUSES, (pipeline_id, step))]
    conn.execute(sql.SET_REPORTED_STEP_STATUS, (aggregate(jobs).value, pipeline_id, step))


def _propagate(conn: sqlite3.Connection, pipeline_id: str, step: str, at: float) -> None:
    """Job → step → pipeline: a failed job fails its step and its pipeline (while it is open)."""
    _step_status(conn, pipeline_id, step)
    steps = [ReportStatus(s) for (s,) in conn.execute(sql.REPORTED_STEP_STATUSES, (pipeline_id,))]
    conn.execute(sql.TOUCH_REPORTED_PIPELINE, (open_pipeline_status(steps).value, at, pipeline_id))


def _resolve(conn: sqlite3.Connection, statement: str, prefix: str, kind: str) -> str:
    """The one id starting with ``prefix`` (ids sort as text: a range scan of the primary key)."""
    prefix = prefix.strip().lower()
    if not prefix:
        raise UsageError(f"empty {kind} id", hint=_LIST_HINT)
    ids = [r for (r,) in conn.execute(statement, (prefix, prefix + "\U0010ffff", 6))]
    if not ids:
        raise NotFoundError(f'unknown reported {kind} "{prefix}"', hint=_LIST_HINT)
    if len(ids) > 1 and prefix not in ids:
        raise UsageError(
            f'{kind} id "{prefix}" is ambiguous: it matches {", ".join(ids[:5])}', hint="type more of it"
        )
    return prefix if prefix in ids else ids[0]


def _require_open(conn: sqlite3.Connection, pipeline_id: str) -> ReportedPipeline:
    p = _pipeline_row(conn, pipeline_id)
    if p.finished_at is not None:
        raise UsageError(
            f"reported pipeline {p.id} is finished ({p.status.value}); its jobs no longer change",
            hint="start another with: orchestrate report pipeline create",
        )
    return p


def _pipeline_from(row: Any, steps: tuple[ReportedStep, ...] = ()) -> ReportedPipeline:
    (pid, ptype, title, sprint, status, created, updated, finished, summary, by, run_id, stage, cleaned,
     jobs) = row  # fmt: skip
    return ReportedPipeline(
        id=pid,
        type=PipelineType(ptype),
        title=title,
        status=ReportStatus(status),
        created_at=created,
        updated_at=updated,
        sprint=sprint,
        finished_at=finished,
        summary=summary,
        created_by=by,
        run_id=run_id,
        stage=stage,
        logs_cleaned_at=cleaned,
        job_count=int(jobs),
        steps=steps,
    )


def _job_from(row: Any) -> ReportedJob:
    jid, pid, step, name, status, created, updated, description, summary, started, finished, log = row
    return ReportedJob(
        id=jid,
        pipeline_id=pid,
        step=step,
        name=name,
        status=ReportStatus(status),
        created_at=created,
        updated_at=updated,
        description=description,
        summary=summary,
        started_at=started,
        finished_at=finished,
        log_path=log,
    )


def _pipeline_row(conn: sqlite3.Connection, pipeline_id: str) -> ReportedPipeline:
    row = conn.execute(sql.SELECT_REPORTED_PIPELINE, (pipeline_id,)).fetchone()
    if row is None:
        raise NotFoundError(f'unknown reported pipeline "{pipeline_id}"', hint=_LIST_HINT)
    return _pipeline_from(row)


def _pipeline(conn: sqlite3.Connection, pipeline_id: str) -> ReportedPipeline:
    head = conn.execute(sql.SELECT_REPORTED_PIPELINE, (pipeline_id,)).fetchone()
    if head is None:
        raise NotFoundError(f'unknown reported pipeline "{pipeline_id}"', hint=_LIST_HINT)
    jobs: dict[str, list[ReportedJob]] = {}
    for row in conn.execute(sql.SELECT_REPORTED_JOBS, (pipeline_id,)):
        job = _job_from(row)
        jobs.setdefault(job.step, []).append(job)
    steps = tuple(
        ReportedStep(name, position, ReportStatus(status), tuple(jobs.get(name, ())))
        for name, position, status in conn.execute(sql.SELECT_REPORTED_STEPS, (pipeline_id,))
    )
    return _pipeline_from(head, steps)


def _job(conn: sqlite3.Connection, job_id: str) -> ReportedJob:
    row = conn.execute(sql.SELECT_REPORTED_JOB, (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f'unknown reported job "{job_id}"', hint=_LIST_HINT)
    return _job_from(row)
