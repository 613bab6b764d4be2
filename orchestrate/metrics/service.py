"""``orchestrate metrics``: durations, success rates and usage of task metrics (DESIGN §8).

``summarize`` returns the JSON contract of DESIGN §8 and the metrics spec (extra keys
allowed, none of these renamed)::

    execution_time  {p50_seconds, p95_seconds, p99_seconds, max_seconds, count, avg_seconds}
    success_rate    {completed, failed, total, rate, cancelled, timed_out}
    usage           {input_tokens, output_tokens, cost_usd}
    by_task_type    {TYPE:  {count, avg_duration, p50_seconds, p95_seconds, success_rate, cost_usd, ...}}
    by_model        {MODEL: {the same}}
    daily           [{date, runs, success_rate, completed, failed, cancelled}] the last 14 days, oldest first
    group_by        {VALUE: {the same as by_task_type}}   with --by (and "by": the key)
    filters         {since, pipeline, status, by}

Every figure covers the rows the filters keep (``--since``, ``--pipeline``, ``--status``),
whatever their status unless ``--status`` says otherwise; the daily chart too.

**Percentiles are nearest-rank**: of the n durations sorted ascending, the p-th
percentile is the one at 1-based rank ceil(p × n / 100) (at least 1): always a recorded
duration, never an interpolation. P50 of [1, 2, 3, 4] is 2; P95 of 20 values is the 19th;
the maximum is rank n. Computed in SQLite, one ``LIMIT 1 OFFSET`` over a covering index
per figure (store/metrics.py), never by loading rows into Python.

**Success rate** = completed / (completed + failed), where failed includes timed_out.
Cancelled rows count in neither: a cancelled attempt says nothing about whether the work
succeeds. ``success_rate.total`` is completed + failed. A rate with nothing to divide
is null, and so is every duration figure of an empty selection (counts are then 0).

Rows without a model, executor, stage... are grouped under the key ``"(none)"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import UsageError
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.metrics import MetricFilter, TaskMetric, Totals, parse_metric_status
from orchestrate.spec.durations import parse_duration

if TYPE_CHECKING:
    from orchestrate.store import Store
    from orchestrate.store.metrics import MetricsReader

# `--by` value → the column it groups by.
BY_COLUMNS = {
    "task_type": "task_type",
    "model": "model",
    "executor": "executor",
    "pipeline": "pipeline",
    "stage": "stage",
    "variant": "prompt_variant",
}
NO_VALUE = "(none)"
DAYS = 14
GROUP_PERCENTILES = (50, 95)
OVERALL_PERCENTILES = (50, 95, 99)


def nearest_rank(percentile: int, count: int) -> int:
    """The 1-based rank of the ``percentile``-th percentile among ``count`` sorted values."""
    return max(1, -(-percentile * count // 100))  # integer ceil: 0.95 * 20 is not quite 19.0


def parse_since(value: str, now: float | None = None) -> float:
    """``--since``: a duration back from now ("30m", "24h", "7d") or an ISO date/time (local if naive)."""
    now = time.time() if now is None else now
    text = value.strip()
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(
            f'--since "{value}": not a duration (30m, 24h, 7d) nor an ISO date (2026-05-01)'
        ) from None


def parse_by(value: str) -> str:
    """The column a ``--by`` value groups by."""
    try:
        return BY_COLUMNS[value]
    except KeyError:
        raise UsageError(f'--by "{value}": not one of {", ".join(BY_COLUMNS)}') from None


def record(
    store: Store,
    *,
    task_type: str,
    duration: float,
    status: str,
    task_id: str | None = None,
    model: str | None = None,
    executor: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost_usd: float | None = None,
    prompt_variant: str | None = None,
    skill_version: str | None = None,
    now: float | None = None,
) -> TaskMetric:
    """Record one self-reported task (`orchestrate metrics record`), finished now; its id: a new one."""
    now = time.time() if now is None else now
    metric = TaskMetric(
        task_id=new_run_id(now) if task_id is None else task_id,
        task_type=task_type,
        duration_seconds=duration,
        status=parse_metric_status(status),
        created_at=now,
        model=model,
        executor=executor,
        prompt_variant=prompt_variant,
        skill_version=skill_version,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
    )
    store.record_metric(metric)
    return metric


def summarize(
    store: Store,
    since: float | None,
    pipeline: str | None,
    status: str | None,
    by: str | None,
    *,
    now: float | None = None,
    days: int = DAYS,
) -> dict[str, Any]:
    """The metrics contract (module docstring) of the rows the filters keep."""
    f = MetricFilter(since, pipeline, None if status is None else parse_metric_status(status))
    column = None if by is None else parse_by(by)
    now = time.time() if now is None else now
    with store.metrics_reader() as reader:
        pairs = reader.totals_by_type_and_model(f)
        overall = fold(pairs.values())
        by_type = fold_by(pairs, lambda key: key[0])
        by_model = fold_by(pairs, lambda key: key[1])
        result: dict[str, Any] = {
            "execution_time": execution_time(reader, f, overall),
            "success_rate": {
                "completed": overall.completed,
                "failed": overall.failed,
                "total": overall.finished,
                "rate": overall.success_rate,
                "cancelled": overall.cancelled,
                "timed_out": overall.timed_out,
            },
            "usage": {
                "input_tokens": overall.input_tokens,
                "output_tokens": overall.output_tokens,
                "cost_usd": _money(overall.cost_usd),
            },
            "by_task_type": groups(reader, f, "task_type", by_type),
            "by_model": groups(reader, f, "model", by_model),
            "daily": daily(reader, f, now, days),
        }
        if column is not None:
            result["by"] = by
            if column == "task_type":
                result["group_by"] = result["by_task_type"]
            elif column == "model":
                result["group_by"] = result["by_model"]
            else:
                result["group_by"] = groups(reader, f, column, reader.totals_by(column, f))
    result["filters"] = {
        "since": None if since is None else datetime.fromtimestamp(since).astimezone().isoformat(),
        "pipeline": pipeline,
        "status": status,
        "by": by,
    }
    result["generated_at"] = now
    return result


def fold(parts: Iterable[Totals]) -> Totals:
    out = Totals()
    for part in parts:
        out.add(part)
    return out


def fold_by(
    pairs: Mapping[tuple[str, str | None], Totals], key: Callable[[tuple[str, str | None]], str | None]
) -> dict[str | None, Totals]:
    out: dict[str | None, Totals] = {}
    for pair, totals in pairs.items():
        out.setdefault(key(pair), Totals()).add(totals)
    return out


def execution_time(reader: MetricsReader, f: MetricFilter, overall: Totals) -> dict[str, Any]:
    n = overall.count
    figures: dict[str, Any] = {
        f"p{p}_seconds": reader.duration_at(f, nearest_rank(p, n), n) for p in OVERALL_PERCENTILES
    }
    figures["max_seconds"] = reader.duration_at(f, n, n)
    figures["count"] = n
    figures["avg_seconds"] = overall.avg_duration
    return figures


def groups(
    reader: MetricsReader, f: MetricFilter, column: str, totals: Mapping[str | None, Totals]
) -> dict[str, dict[str, Any]]:
    """One entry per value of ``column``, the busiest first."""
    out: dict[str, dict[str, Any]] = {}
    for value, t in sorted(totals.items(), key=lambda item: (-item[1].count, item[0] or "")):
        entry: dict[str, Any] = {"count": t.count, "avg_duration": t.avg_duration}
        for p in GROUP_PERCENTILES:
            entry[f"p{p}_seconds"] = reader.duration_at(f, nearest_rank(p, t.count), t.count, column, value)
        entry.update(
            success_rate=t.success_rate,
            cost_usd=_money(t.cost_usd),
            completed=t.completed,
            failed=t.failed,
            cancelled=t.cancelled,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
        )
        out[NO_VALUE if value is None else value] = entry
    return out


def day_bounds(now: float, days: int) -> list[tuple[date, float, float]]:
    """(date, start, end) of the last ``days`` local calendar days, today last."""
    today = date.fromtimestamp(now)

    def midnight(d: date) -> float:
        return datetime(d.year, d.month, d.day).timestamp()  # naive: local time, DST included

    return [
        (d, midnight(d), midnight(d + timedelta(days=1)))
        for d in (today - timedelta(days=back) for back in range(days - 1, -1, -1))
    ]


def daily(reader: MetricsReader, f: MetricFilter, now: float, days: int) -> list[dict[str, Any]]:
    out = []
    for d, start, end in day_bounds(now, days):
        t = reader.day(f, start, end)
        out.append(
            {
                "date": d.isoformat(),
                "runs": t.count,
                "success_rate": t.success_rate,
                "completed": t.completed,
                "failed": t.failed,
                "cancelled": t.cancelled,
            }
        )
    return out


def _money(value: float) -> float:
    return round(value, 6)  # sums of floats: 0.1 + 0.2 is not 0.3
