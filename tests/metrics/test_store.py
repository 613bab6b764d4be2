"""The task_metrics table: rows as recorded, and reads that walk one covering index, never sort."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrate.domain.metrics import MetricFilter, MetricStatus, TaskMetric, attempt_task_id
from orchestrate.store import Store, sql
from orchestrate.store.metrics import GROUP_COLUMNS
from tests.metrics.helpers import NOW


def rows(db: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchall()


def test_record_metric_stores_every_field(store: Store) -> None:
    metric = TaskMetric(
        task_id=attempt_task_id("01run", "review", 2),
        task_type="review",
        duration_seconds=12.5,
        status=MetricStatus.TIMED_OUT,
        created_at=NOW,
        model="claude",
        executor="claude-code",
        prompt_variant="b",
        skill_version="v3",
        pipeline="agents",
        run_id="01run",
        stage="review",
        attempt=2,
        input_tokens=1200,
        output_tokens=300,
        cost_usd=0.0123,
    )
    store.record_metric(metric)
    (row,) = rows(store.path, "select * from task_metrics")
    assert row[:10] == (
        1,
        "01run/review/2",
        "review",
        "claude",
        "claude-code",
        12.5,
        "timed_out",
        NOW,
        "b",
        "v3",
    )
    assert row[10:] == ("agents", "01run", "review", 2, 1200, 300, 0.0123)


def test_record_metrics_takes_a_generator_in_one_transaction(store: Store) -> None:
    count = store.record_metrics(
        TaskMetric(f"t{i}", "impl", float(i), MetricStatus.COMPLETED, NOW) for i in range(1000)
    )
    assert count == 1000
    assert rows(store.path, "select count(*), sum(duration_seconds) from task_metrics") == [(1000, 499500.0)]


def test_a_snapshot_reads_consistent_counts(store: Store) -> None:
    store.record_metrics(
        TaskMetric(f"t{i}", "impl", float(i), MetricStatus.COMPLETED, NOW) for i in range(10)
    )
    with store.metrics_reader() as reader:
        totals = reader.totals_by_type_and_model(MetricFilter())
        assert totals[("impl", None)].count == 10
        assert reader.duration_at(MetricFilter(), 1, 10) == 0.0
        assert reader.duration_at(MetricFilter(), 10, 10) == 9.0  # read from the top
        assert reader.duration_at(MetricFilter(), 3, 10, "task_type", "impl") == 2.0
        assert reader.duration_at(MetricFilter(), 1, 0) is None


METRIC_STATEMENTS = {
    name: value for name, value in vars(sql).items() if name.startswith("METRIC_") and isinstance(value, str)
}


def expected_index(name: str) -> str:
    if name == "METRIC_TOTALS":
        return "ix_task_metrics_summary"
    if name == "METRIC_DAY":
        return "ix_task_metrics_created_at"
    for column in GROUP_COLUMNS:
        if name.startswith((f"METRIC_TOTALS_BY_{column.upper()}", f"METRIC_DURATION_BY_{column.upper()}_")):
            return f"ix_task_metrics_{column}_duration"
    assert name.startswith("METRIC_DURATION_"), name
    return "ix_task_metrics_duration"


@pytest.mark.parametrize("name", sorted(METRIC_STATEMENTS))
def test_each_read_walks_one_covering_index_and_never_sorts(store: Store, name: str) -> None:
    statement = METRIC_STATEMENTS[name]
    # with filters and without: the plan must not change (no index serves the filters, on purpose)
    for filters in ((None,) * 7, (NOW, NOW, "ci", "ci", "failed", "failed", "timed_out")):
        params: list[object] = [None] * statement.count("?")
        start = statement.index("(? IS NULL OR created_at")
        offset = statement[:start].count("?")
        params[offset : offset + 7] = filters
        lines = [str(r[-1]) for r in rows(store.path, "explain query plan " + statement, *params)]
        plan = " | ".join(lines)
        assert len(lines) == 1, (name, plan)  # one index, no temporary b-tree
        assert f"COVERING INDEX {expected_index(name)}" in plan, (name, plan)


def test_every_group_column_has_its_statements() -> None:
    for column in GROUP_COLUMNS:
        assert f"METRIC_DURATION_BY_{column.upper()}_ASC" in METRIC_STATEMENTS
        assert f"METRIC_DURATION_BY_{column.upper()}_DESC" in METRIC_STATEMENTS


def test_create_table_upgrades_a_store_made_before_task_metrics(store: Store) -> None:
    from orchestrate.store.metrics import create_table

    fresh = {
        r for r in rows(store.path, "select type, name, sql from sqlite_master") if "task_metrics" in str(r)
    }
    conn = sqlite3.connect(store.path)
    conn.execute("drop table task_metrics")  # its indexes go with it
    assert not conn.execute("select 1 from sqlite_master where sql like '%task_metrics%'").fetchall()
    create_table(conn)
    create_table(conn)  # twice: nothing happens
    conn.commit()
    conn.close()
    assert {
        r for r in rows(store.path, "select type, name, sql from sqlite_master") if "task_metrics" in str(r)
    } == fresh
    assert len(fresh) == 1 + 9  # the table and its indexes
