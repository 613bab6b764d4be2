"""Reading a run back: current state, events, definition, a JSON-ready record.

Plain sqlite3 like the writer, because ``pipeline run`` and ``pipeline status`` read
on their start-up path too. Each function runs inside the caller's read
transaction, so its several SELECTs see one snapshot even while the run's process
keeps writing. Callers get domain objects and plain dicts, never rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.events import RunEvent, from_record
from orchestrate.domain.state import AttemptState, RunState, StageState
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import sql

_HISTORY_HINT = "orchestrate pipeline history PIPELINE lists its runs"
_AMBIGUOUS_SHOWN = 5


def unknown_run(run_id: str) -> NotFoundError:
    return NotFoundError(f'unknown run "{run_id}"', hint=_HISTORY_HINT)


def require_run(conn: sqlite3.Connection, run_id: str) -> None:
    if conn.execute(sql.RUN_EXISTS, (run_id,)).fetchone() is None:
        raise unknown_run(run_id)


def _run_row(conn: sqlite3.Connection, run_id: str) -> sqlite3.Row:
    cur = conn.execute(sql.SELECT_RUN, (run_id,))
    cur.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cur.fetchone()
    if row is None:
        raise unknown_run(run_id)
    return row


def _attempt_rows(conn: sqlite3.Connection, run_id: str) -> dict[str, list[sqlite3.Row]]:
    cur = conn.execute(sql.SELECT_ATTEMPTS, (run_id,))
    cur.row_factory = sqlite3.Row
    by_stage: dict[str, list[sqlite3.Row]] = {}
    for row in cur:
        by_stage.setdefault(row["stage"], []).append(row)
    return by_stage


def _stage_rows(conn: sqlite3.Connection, run_id: str) -> list[sqlite3.Row]:
    cur = conn.execute(sql.SELECT_STAGES, (run_id,))
    cur.row_factory = sqlite3.Row
    return cur.fetchall()


def run_state(conn: sqlite3.Connection, run_id: str) -> RunState:
    """The run as the current-state rows hold it (not replayed from events)."""
    run = _run_row(conn, run_id)
    attempts = _attempt_rows(conn, run_id)
    stages: dict[str, StageState] = {}
    for row in _stage_rows(conn, run_id):
        stages[row["name"]] = StageState(
            name=row["name"],
            status=StageStatus(row["status"]),
            attempts=tuple(
                AttemptState(
                    attempt=a["attempt"],
                    started_at=a["started_at"],
                    finished_at=a["finished_at"],
                    status=StageStatus(a["status"]),
                    exit_code=a["exit_code"],
                    error=a["error"],
                    log_path=a["log_path"],
                    pid=a["pid"],
                )
                for a in attempts.get(row["name"], ())
            ),
            reason=row["reason"],
            outputs=json.loads(row["outputs"]),
        )
    budgets: dict[str, Any] = {}  # the latest budget check per scope (issue 10)
    for (data,) in conn.execute(sql.RUN_BUDGET_EVENTS, (run_id,)):
        check = from_record(run_id, "budget_checked", json.loads(data))
        budgets[getattr(check, "scope", "")] = check
    return RunState(
        run_id=run["id"],
        pipeline=run["pipeline"],
        stages=stages,
        status=RunStatus(run["status"]),
        created_at=run["created_at"],
        started_at=run["started_at"],
        finished_at=run["finished_at"],
        reason=run["reason"],
        pid=run["pid"],
        variables=json.loads(run["variables"]),
        host=run["host"],
        heartbeat_at=run["heartbeat_at"],
        started_by=run["started_by"],
        triggered_by=run["triggered_by"],
        parent_run_id=run["parent_run_id"],
        event_id=run["event_id"],
        version=run["version"],
        budgets=budgets,
    )


def run_events(conn: sqlite3.Connection, run_id: str) -> list[RunEvent]:
    events = [
        from_record(run_id, kind, json.loads(payload))
        for kind, payload in conn.execute(sql.SELECT_EVENTS, (run_id,))
    ]
    if not events:
        require_run(conn, run_id)
    return events


def run_definition(conn: sqlite3.Connection, run_id: str) -> tuple[str, str]:
    row = conn.execute(sql.SELECT_DEFINITION, (run_id,)).fetchone()
    if row is None:
        raise unknown_run(run_id)
    return row[0], row[1]


def _duration(started_at: float | None, finished_at: float | None, now: float) -> float | None:
    """Derived, never stored (DESIGN §3): finished − started, or now − started while active."""
    if started_at is None:
        return None
    return max(0.0, (now if finished_at is None else finished_at) - started_at)


def run_record(conn: sqlite3.Connection, run_id: str, now: float | None = None) -> dict[str, Any]:
    """The run as a JSON-ready dict (``--json`` output, checkpoint.json)."""
    now = time.time() if now is None else now
    run = _run_row(conn, run_id)
    attempts = _attempt_rows(conn, run_id)
    stages = []
    for row in _stage_rows(conn, run_id):
        stages.append(
            {
                "name": row["name"],
                "status": row["status"],
                "attempts": [
                    {
                        "attempt": a["attempt"],
                        "status": a["status"],
                        "exit_code": a["exit_code"],
                        "error": a["error"],
                        "started_at": a["started_at"],
                        "finished_at": a["finished_at"],
                        "duration_seconds": _duration(a["started_at"], a["finished_at"], now),
                        "log_path": a["log_path"],
                    }
                    for a in attempts.get(row["name"], ())
                ],
                "reason": row["reason"],
                "outputs": json.loads(row["outputs"]),
                "started_at": row["started_at"],
                "finished_at": row["finished_at"],
                "duration_seconds": _duration(row["started_at"], row["finished_at"], now),
            }
        )
    return {
        "id": run["id"],
        "pipeline": run["pipeline"],
        "version": run["version"],
        "digest": run["digest"],
        "status": run["status"],
        "reason": run["reason"],
        "variables": json.loads(run["variables"]),
        "created_at": run["created_at"],
        "started_at": run["started_at"],
        "finished_at": run["finished_at"],
        "duration_seconds": _duration(run["started_at"], run["finished_at"], now),
        "started_by": run["started_by"],
        "triggered_by": run["triggered_by"],
        "parent_run_id": run["parent_run_id"],
        "event_id": run["event_id"],
        "cancelled_by": run["cancel_requested_by"],
        # Issue 10: the run's experiment variants, and the latest budget check per scope
        # ("run" or a stage name), as `pipeline status` shows them.
        "variants": {e: v for e, v, _by in conn.execute(sql.RUN_VARIANTS, (run_id,))},
        "budgets": _budget_checks(conn, run_id),
        "stages": stages,
    }


def _budget_checks(conn: sqlite3.Connection, run_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (data,) in conn.execute(sql.RUN_BUDGET_EVENTS, (run_id,)):
        check = json.loads(data)
        check.pop("run_id", None)
        out[str(check.get("scope", ""))] = check
    return out


def resolve_run_id(conn: sqlite3.Connection, prefix: str) -> str:
    """The one run whose id starts with ``prefix`` (an exact id always wins)."""
    prefix = prefix.strip()
    if not prefix:
        raise UsageError("empty run id", hint=_HISTORY_HINT)
    candidates = _ids_with_prefix(conn, prefix)
    if not candidates and prefix.lower() != prefix:
        candidates = _ids_with_prefix(conn, prefix.lower())  # generated ids are lowercase
    if not candidates:
        raise unknown_run(prefix)
    if len(candidates) == 1:
        return candidates[0]
    if prefix in candidates:
        return prefix
    shown = ", ".join(candidates[:_AMBIGUOUS_SHOWN])
    more = " and more" if len(candidates) > _AMBIGUOUS_SHOWN else ""
    raise UsageError(
        f'run id "{prefix}" is ambiguous: it matches {shown}{more}',
        hint="type more characters of the run id",
    )


def _ids_with_prefix(conn: sqlite3.Connection, prefix: str) -> list[str]:
    # U+10FFFF sorts after every character an id can hold (BINARY collation compares
    # UTF-8 bytes), so [prefix, prefix + U+10FFFF) is exactly the ids with the prefix.
    rows = conn.execute(sql.SELECT_IDS_IN_RANGE, (prefix, prefix + "\U0010ffff", _AMBIGUOUS_SHOWN + 1))
    return [row[0] for row in rows]
