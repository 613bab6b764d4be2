"""Controlling runs from any process: cancel requests, claiming a run, pruning old runs."""

from __future__ import annotations

import sqlite3

from orchestrate.domain.status import RUN_TERMINAL
from orchestrate.store import sql


def request_cancel(conn: sqlite3.Connection, run_id: str, by: str, at: float) -> bool:
    """Flag the run for cancellation; False if it was already flagged."""
    return conn.execute(sql.REQUEST_CANCEL, (at, by, run_id)).rowcount == 1


def cancel_request(conn: sqlite3.Connection, run_id: str) -> tuple[float, str] | None:
    row = conn.execute(sql.SELECT_CANCEL, (run_id,)).fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]), str(row[1])


def claim(
    conn: sqlite3.Connection,
    run_id: str,
    previous: tuple[int | None, str | None],
    pid: int,
    host: str,
    at: float,
) -> bool:
    """Take the run over from ``previous`` (pid, host); False if someone else changed it first."""
    return conn.execute(sql.CLAIM_RUN, (pid, host, at, run_id, previous[0], previous[1])).rowcount == 1


def prunable(conn: sqlite3.Connection, before: float | None, keep_runs: int | None) -> list[str]:
    """Finished runs older than ``before``, and those beyond each pipeline's newest ``keep_runs`` finished ones."""
    terminal = sorted(s.value for s in RUN_TERMINAL)
    ids: dict[str, None] = {}
    if before is not None:
        ids.update(dict.fromkeys(r for (r,) in conn.execute(sql.RUNS_OLDER_THAN, (before, *terminal))))
    if keep_runs is not None:
        for (name,) in conn.execute(sql.PIPELINES_WITH_RUNS).fetchall():
            ids.update(
                dict.fromkeys(r for (r,) in conn.execute(sql.RUNS_BEYOND, (name, *terminal, keep_runs)))
            )
    return list(ids)


def delete_run(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute(sql.DELETE_ATTEMPTS, (run_id,))
    conn.execute(sql.DELETE_RUN, (run_id,))
