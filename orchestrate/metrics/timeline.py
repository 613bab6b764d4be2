"""Duration percentiles per day, for the dashboard's metrics charts (``GET /api/agent/metrics/daily``).

The same rows, filters and nearest-rank percentiles as ``service.summarize`` (see its
docstring), one local calendar day at a time.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from orchestrate.domain.metrics import MetricFilter, parse_metric_status
from orchestrate.metrics.service import DAYS, day_bounds, nearest_rank

if TYPE_CHECKING:
    from orchestrate.store import Store

PERCENTILES = (50, 95)


def daily_percentiles(
    store: Store,
    since: float | None = None,
    pipeline: str | None = None,
    status: str | None = None,
    *,
    now: float | None = None,
    days: int = DAYS,
) -> list[dict[str, Any]]:
    """[{date, count, p50_seconds, p95_seconds}] for the last ``days`` days, oldest first."""
    from orchestrate.store.live import day_durations_at

    f = MetricFilter(since, pipeline, None if status is None else parse_metric_status(status))
    now = time.time() if now is None else now
    bounds = day_bounds(now, days)
    with store.metrics_reader() as reader:
        counts = [reader.day(f, start, end).count for _, start, end in bounds]
    asked = [
        (start, end, [nearest_rank(p, n) - 1 for p in PERCENTILES] if n else [])
        for (_, start, end), n in zip(bounds, counts, strict=True)
    ]
    figures = day_durations_at(store, f, asked)
    out = []
    for (d, _, _), n, values in zip(bounds, counts, figures, strict=True):
        entry: dict[str, Any] = {"date": d.isoformat(), "count": n}
        for i, p in enumerate(PERCENTILES):
            entry[f"p{p}_seconds"] = values[i] if values else None
        out.append(entry)
    return out
