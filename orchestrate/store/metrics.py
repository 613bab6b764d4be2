"""Task metrics rows: recording them and the aggregate reads of ``orchestrate metrics``.

Plain sqlite3 over ``tables.TaskMetricRecord`` with the statements of ``sql.py``. The
reads never bring rows into Python: totals come back per group (a few hundred rows at
most) and a percentile is one ``ORDER BY duration_seconds LIMIT 1 OFFSET k`` walking a
covering index. ``MetricsReader`` runs them all inside one read transaction, so counts
and offsets agree even while runs keep recording.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from orchestrate.domain.metrics import MetricFilter, MetricStatus, TaskMetric, Totals
from orchestrate.store import sql
from orchestrate.store.db import Database

Metrics = Iterable[TaskMetric]  # what Store.record_metrics takes: a list, or a generator

# `--by` keys with their own totals statement; task_type and model are folded from METRIC_TOTALS.
_TOTALS_BY = {
    "executor": sql.METRIC_TOTALS_BY_EXECUTOR,
    "pipeline": sql.METRIC_TOTALS_BY_PIPELINE,
    "stage": sql.METRIC_TOTALS_BY_STAGE,
    "prompt_variant": sql.METRIC_TOTALS_BY_PROMPT_VARIANT,
}

# (ascending, descending) duration-at-offset statements, overall (None) and per group column.
_DURATION_AT = {
    None: (sql.METRIC_DURATION_ASC, sql.METRIC_DURATION_DESC),
    "task_type": (sql.METRIC_DURATION_BY_TASK_TYPE_ASC, sql.METRIC_DURATION_BY_TASK_TYPE_DESC),
    "model": (sql.METRIC_DURATION_BY_MODEL_ASC, sql.METRIC_DURATION_BY_MODEL_DESC),
    "executor": (sql.METRIC_DURATION_BY_EXECUTOR_ASC, sql.METRIC_DURATION_BY_EXECUTOR_DESC),
    "pipeline": (sql.METRIC_DURATION_BY_PIPELINE_ASC, sql.METRIC_DURATION_BY_PIPELINE_DESC),
    "stage": (sql.METRIC_DURATION_BY_STAGE_ASC, sql.METRIC_DURATION_BY_STAGE_DESC),
    "prompt_variant": (sql.METRIC_DURATION_BY_PROMPT_VARIANT_ASC, sql.METRIC_DURATION_BY_PROMPT_VARIANT_DESC),
}
GROUP_COLUMNS = tuple(c for c in _DURATION_AT if c is not None)

_COUNTED = (MetricStatus.COMPLETED.value, MetricStatus.FAILED.value, MetricStatus.TIMED_OUT.value)


def _row(m: TaskMetric) -> tuple[Any, ...]:
    return (
        m.task_id,
        m.task_type,
        m.model,
        m.executor,
        float(m.duration_seconds),
        m.status.value,
        float(m.created_at),
        m.prompt_variant,
        m.skill_version,
        m.pipeline,
        m.run_id,
        m.stage,
        m.attempt,
        m.input_tokens,
        m.output_tokens,
        m.cost_usd,
    )


def insert(conn: sqlite3.Connection, metrics: Metrics) -> int:
    """Insert the rows (one executemany) and return how many."""
    cur = conn.executemany(sql.INSERT_TASK_METRIC, (_row(m) for m in metrics))
    return max(cur.rowcount, 0)


def create_table(conn: sqlite3.Connection) -> None:
    """A migration step for a store created before task metrics (``db.MIGRATIONS[n] = create_table``).

    Creates the table and its indexes, compiled from ``tables.TaskMetricRecord`` as
    ``db.create_schema`` compiles a new store: adding, never altering, anything else.
    """
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from orchestrate.store.tables import TaskMetricRecord

    table = TaskMetricRecord.__table__  # type: ignore[attr-defined]
    conn.execute(str(CreateTable(table, if_not_exists=True).compile(dialect=sqlite.dialect())))
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        conn.execute(str(CreateIndex(index, if_not_exists=True).compile(dialect=sqlite.dialect())))


def filter_params(f: MetricFilter) -> tuple[Any, ...]:
    """The seven parameters of ``sql._metric_filter``."""
    statuses = f.statuses
    first, second = statuses if statuses is not None else (None, None)
    return (f.since, f.since, f.pipeline, f.pipeline, first, first, second)


def _sums(totals: Totals, duration: float, tokens_in: float, tokens_out: float, cost: float) -> None:
    totals.duration_seconds += duration
    totals.input_tokens += int(tokens_in)
    totals.output_tokens += int(tokens_out)
    totals.cost_usd += cost


class MetricsReader:
    """The aggregate reads over one snapshot of the store (see ``snapshot``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def totals_by_type_and_model(self, f: MetricFilter) -> dict[tuple[str, str | None], Totals]:
        """Additive totals per (task_type, model) of the filtered rows."""
        out: dict[tuple[str, str | None], Totals] = {}
        for task_type, model, status, count, duration, t_in, t_out, cost in self._conn.execute(
            sql.METRIC_TOTALS, filter_params(f)
        ):
            totals = out.setdefault((task_type, model), Totals())
            totals.add_status(MetricStatus(status), int(count))
            _sums(totals, duration, t_in, t_out, cost)
        return out

    def totals_by(self, column: str, f: MetricFilter) -> dict[str | None, Totals]:
        """Totals per value of executor, pipeline, stage or prompt_variant (None: rows without one)."""
        statement = _TOTALS_BY[column]  # a KeyError here is a bug: the service checks `--by`
        out: dict[str | None, Totals] = {}
        for key, count, completed, failed, timed_out, duration, t_in, t_out, cost in self._conn.execute(
            statement, (*_COUNTED, *filter_params(f))
        ):
            totals = out.setdefault(key, Totals())
            counted = int(completed) + int(failed) + int(timed_out)
            totals.add_status(MetricStatus.COMPLETED, int(completed))
            totals.add_status(MetricStatus.FAILED, int(failed))
            totals.add_status(MetricStatus.TIMED_OUT, int(timed_out))
            totals.add_status(MetricStatus.CANCELLED, int(count) - counted)
            _sums(totals, duration, t_in, t_out, cost)
        return out

    def duration_at(
        self, f: MetricFilter, rank: int, count: int, column: str | None = None, value: str | None = None
    ) -> float | None:
        """The ``rank``-th smallest duration (1-based) of the ``count`` filtered rows of a group.

        ``count`` must be the group's filtered count in this same snapshot: ranks past the
        middle are read from the top (offset ``count - rank`` descending), so that P95, P99
        and the maximum walk only a few entries of the index. None when there is no such row.
        """
        if count <= 0 or not 1 <= rank <= count:
            return None
        ascending, descending = _DURATION_AT[column]
        if rank - 1 <= count - rank:
            statement, offset = ascending, rank - 1
        else:
            statement, offset = descending, count - rank
        group = (value,) if column is not None else ()
        row = self._conn.execute(statement, (*group, *filter_params(f), offset)).fetchone()
        return None if row is None else float(row[0])

    def day(self, f: MetricFilter, start: float, end: float) -> Totals:
        """Status counts of the filtered rows created in [start, end)."""
        count, completed, failed, timed_out = self._conn.execute(
            sql.METRIC_DAY, (*_COUNTED, start, end, *filter_params(f))
        ).fetchone()
        totals = Totals()
        totals.add_status(MetricStatus.COMPLETED, int(completed))
        totals.add_status(MetricStatus.FAILED, int(failed))
        totals.add_status(MetricStatus.TIMED_OUT, int(timed_out))
        totals.add_status(MetricStatus.CANCELLED, int(count) - int(completed + failed + timed_out))
        return totals


Snapshot = AbstractContextManager[MetricsReader]


@contextmanager
def snapshot(db: Database) -> Iterator[MetricsReader]:
    """``with snapshot(db) as reader:`` every read inside sees the same rows."""
    with db.read() as conn:
        yield MetricsReader(conn)
