"""Pipelines, their versions and their run history, read and changed in short transactions."""

from __future__ import annotations

import sqlite3
from typing import Any

from orchestrate.domain.records import PipelineInfo, RunSummary, VersionInfo
from orchestrate.domain.status import RUN_ACTIVE, RunStatus
from orchestrate.store import sql


def run_summary(row: Any) -> RunSummary:
    (
        rid,
        pipeline,
        version,
        status,
        created,
        started,
        finished,
        reason,
        trig,
        by,
        parent,
        pid,
        host,
        beat,
    ) = row
    return RunSummary(
        id=str(rid),
        pipeline=str(pipeline),
        version=int(version),
        status=RunStatus(status),
        created_at=float(created),
        started_at=started,
        finished_at=finished,
        reason=reason,
        triggered_by=trig,
        started_by=by,
        parent_run_id=parent,
        pid=pid,
        host=host,
        heartbeat_at=beat,
    )


def _pipeline(conn: sqlite3.Connection, row: Any) -> PipelineInfo:
    name, enabled, created, updated, deleted, latest = row
    counts = {RunStatus(s): int(n) for s, n in conn.execute(sql.RUN_COUNTS, (name,))}
    last = conn.execute(sql.LAST_RUN, (name,)).fetchone()
    return PipelineInfo(
        name=str(name),
        enabled=bool(enabled),
        created_at=float(created),
        updated_at=float(updated),
        deleted_at=deleted,
        latest_version=latest,
        counts=counts,
        last_run=run_summary(last) if last else None,
    )


def pipelines(conn: sqlite3.Connection) -> list[PipelineInfo]:
    return [_pipeline(conn, row) for row in conn.execute(sql.SELECT_PIPELINES).fetchall()]


def pipeline(conn: sqlite3.Connection, name: str) -> PipelineInfo | None:
    row = conn.execute(sql.SELECT_PIPELINE, (name,)).fetchone()
    return _pipeline(conn, row) if row else None


def versions(conn: sqlite3.Connection, name: str) -> list[VersionInfo]:
    return [VersionInfo(v, d, p, c) for v, d, p, c in conn.execute(sql.SELECT_VERSIONS, (name,))]


def version(conn: sqlite3.Connection, name: str, number: int | None) -> VersionInfo | None:
    if number is None:
        row = conn.execute(sql.SELECT_LATEST_VERSION_TEXT, (name,)).fetchone()
    else:
        row = conn.execute(sql.SELECT_VERSION_TEXT, (name, number)).fetchone()
    if row is None:
        return None
    v, digest, path, text, compiled = row
    return VersionInfo(v, digest, path, 0.0, text, compiled)


def history(conn: sqlite3.Connection, name: str, limit: int, status: RunStatus | None) -> list[RunSummary]:
    if status is None:
        cur = conn.execute(sql.HISTORY, (name, limit))
    else:
        cur = conn.execute(sql.HISTORY_WITH_STATUS, (name, status.value, limit))
    return [run_summary(row) for row in cur]


def active_runs(conn: sqlite3.Connection) -> list[RunSummary]:
    statuses = sorted(s.value for s in RUN_ACTIVE)
    return [run_summary(row) for row in conn.execute(sql.ACTIVE_RUNS, statuses)]
