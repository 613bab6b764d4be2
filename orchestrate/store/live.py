"""Reads for ``orchestrate serve``: tailing run_events for the live stream, daily duration percentiles.

Plain sqlite3 on the store's connection, like ``reads.py``: the stream polls several
times a second and must stay cheap. Callers get plain dicts and floats, never rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrate.domain.metrics import MetricFilter
from orchestrate.store import sql
from orchestrate.store.metrics import filter_params

if TYPE_CHECKING:
    from orchestrate.store.store import Store


@dataclass(frozen=True)
class StoredEvent:
    """One run_events row: ``id`` orders every event of every run."""

    id: int
    run_id: str
    at: float
    kind: str
    payload: dict[str, Any]


def last_event_id(store: Store) -> int:
    with store._db.read() as conn:
        return int(conn.execute(sql.LAST_RUN_EVENT_ID).fetchone()[0])


def events_after(store: Store, after: int, run_id: str | None = None, limit: int = 500) -> list[StoredEvent]:
    """The events with an id above ``after`` (of one run, if given), oldest first."""
    with store._db.read() as conn:
        rows = conn.execute(sql.RUN_EVENTS_AFTER, (after, run_id, run_id, limit)).fetchall()
    return [StoredEvent(int(r[0]), r[1], float(r[2]), r[3], json.loads(r[4])) for r in rows]


def day_durations_at(
    store: Store, f: MetricFilter, days: Sequence[tuple[float, float, Sequence[int]]]
) -> list[list[float | None]]:
    """For each (start, end, zero-based offsets): the durations at those offsets among the day's rows.

    One read transaction for all, so the counts the caller got agree with the offsets.
    """
    out: list[list[float | None]] = []
    with store._db.read() as conn:
        for start, end, offsets in days:
            figures: list[float | None] = []
            for offset in offsets:
                row = conn.execute(
                    sql.DAY_DURATION_AT_OFFSET, (start, end, *filter_params(f), offset)
                ).fetchone()
                figures.append(None if row is None else float(row[0]))
            out.append(figures)
    return out
