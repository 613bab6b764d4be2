"""The Rich view of `orchestrate metrics`, checked as text from a capture console."""

from __future__ import annotations

import io
import random
from datetime import date, datetime

from rich.console import Console

from orchestrate.domain.metrics import MetricStatus, TaskMetric
from orchestrate.metrics import service
from orchestrate.store import Store
from orchestrate.ui.metrics_view import EMPTY, compact, daily_chart, metrics_view, money
from tests.metrics.helpers import DAY, NOW, random_metrics


def render(renderable: object, width: int = 120) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_empty_store_and_empty_selection(store: Store) -> None:
    text = render(metrics_view(service.summarize(store, None, None, None, None, now=NOW)))
    assert [line.rstrip() for line in text.strip().splitlines()] == EMPTY.splitlines()
    filtered = render(metrics_view(service.summarize(store, NOW - DAY, "ci", "failed", None, now=NOW)))
    assert filtered.startswith("no task metrics match since ")
    assert "pipeline ci, status failed; without filters: orchestrate metrics" in filtered


def test_figures_breakdowns_and_the_daily_chart(store: Store) -> None:
    store.record_metrics(random_metrics(random.Random(3), 300))
    summary = service.summarize(store, None, None, None, None, now=NOW)
    text = render(metrics_view(summary))
    lines = text.splitlines()
    assert lines[0].startswith("Task metrics  300 tasks")
    execution = next(line for line in lines if line.startswith("execution time"))
    for label in ("P50", "P95", "P99", "max", "avg"):
        assert f"{label} " in execution
    success = next(line for line in lines if line.startswith("success rate"))
    rate = summary["success_rate"]
    assert f"{rate['rate']:.1%}  {rate['completed']:,} completed of {rate['total']:,}" in success
    assert f"{rate['cancelled']:,} cancelled, not counted" in success
    assert (
        next(line for line in lines if line.startswith("usage"))
        .rstrip()
        .endswith(f"out, {money(summary['usage']['cost_usd'])}")
    )
    assert "by task type" in text and "by model" in text and "(none)" in text
    header = next(line for line in lines if line.startswith("task type"))
    assert header.split() == ["task", "type", "tasks", "avg", "P50", "P95", "success", "tokens", "cost"]
    spark = next(line for line in lines if line.startswith("tasks "))
    assert "busiest" in spark
    by = render(metrics_view(service.summarize(store, None, None, None, "variant", now=NOW)))
    assert "by prompt variant" in by and "by task type" not in by


def test_daily_chart_scales_runs_to_the_busiest_day_and_success_to_100_percent() -> None:
    days = [
        {"date": "2026-05-18", "runs": 0, "success_rate": None},
        {"date": "2026-05-19", "runs": 5, "success_rate": 0.5},
        {"date": "2026-05-20", "runs": 10, "success_rate": 1.0},
    ]
    text = render(daily_chart(days))
    assert "last 3 days  2026-05-18 → 2026-05-20" in text
    assert "tasks    ·▅█  busiest 10 a day" in text
    assert "success  ·▅█  50%–100%" in text


def test_number_formats() -> None:
    assert [compact(n) for n in (0, 9_876, 12_345, 4_200_000, 1_100_000_000)] == [
        "0",
        "9,876",
        "12.3k",
        "4.2M",
        "1.1B",
    ]
    assert [money(x) for x in (0.0, 0.0123, 1234.5)] == ["$0", "$0.0123", "$1,234.50"]


def test_a_single_task(store: Store) -> None:
    today = date.fromtimestamp(NOW)
    at = datetime(today.year, today.month, today.day, 9).timestamp()
    store.record_metric(TaskMetric("t", "impl", 75.0, MetricStatus.CANCELLED, at, model="claude"))
    text = render(metrics_view(service.summarize(store, None, None, None, None, now=NOW)))
    assert "Task metrics  1 task" in text and "1 tasks" not in text
    assert "P50 1m15s" in text
    assert "success rate     –  0 completed of 0" in text  # a cancelled task says nothing either way
    assert "success  ··············  no finished tasks" in text
