"""metrics.service.summarize against an independent reference, and the JSON contract key by key."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta

import pytest

from orchestrate.domain.errors import UsageError
from orchestrate.domain.metrics import MetricStatus, TaskMetric, metric_status
from orchestrate.domain.status import StageStatus
from orchestrate.metrics import service
from orchestrate.store import Store
from tests.metrics.helpers import (
    DAY,
    NOW,
    keep,
    percentile,
    random_metrics,
    reference_groups,
    success_rate,
)

ROWS = random_metrics(random.Random(8), 600)
FILTERS = [
    {},
    {"since": NOW - 5 * DAY},
    {"pipeline": "ci"},
    {"status": "failed"},
    {"status": "completed"},
    {"status": "timed_out"},
    {"since": NOW - 12 * DAY, "pipeline": "agents", "status": "completed"},
]


def summarize(store: Store, by: str | None = None, **filters: object) -> dict[str, object]:
    return service.summarize(
        store,
        filters.get("since"),  # type: ignore[arg-type]
        filters.get("pipeline"),  # type: ignore[arg-type]
        filters.get("status"),  # type: ignore[arg-type]
        by,
        now=NOW,
    )


@pytest.fixture
def filled(store: Store) -> Store:
    assert store.record_metrics(ROWS) == len(ROWS)
    return store


def close(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-9)
    return a == b


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f"{k}" for k in f) or "none")
def test_overall_figures_match_a_reference_sorted_in_python(filled: Store, filters: dict) -> None:
    rows = [m for m in ROWS if keep(**filters)(m)]
    durations = [m.duration_seconds for m in rows]
    assert rows, "the filter must keep some rows for the check to mean anything"
    out = summarize(filled, **filters)
    assert out["execution_time"]["count"] == len(rows)
    for p in (50, 95, 99):
        assert out["execution_time"][f"p{p}_seconds"] == percentile(durations, p), p
    assert out["execution_time"]["max_seconds"] == max(durations)
    assert close(out["execution_time"]["avg_seconds"], sum(durations) / len(durations))
    completed = sum(1 for m in rows if m.status == "completed")
    failed = sum(1 for m in rows if m.status in ("failed", "timed_out"))
    assert out["success_rate"]["completed"] == completed
    assert out["success_rate"]["failed"] == failed
    assert out["success_rate"]["total"] == completed + failed
    assert close(out["success_rate"]["rate"], success_rate(rows))
    assert out["success_rate"]["cancelled"] == sum(1 for m in rows if m.status == "cancelled")
    assert out["usage"]["input_tokens"] == sum(m.input_tokens or 0 for m in rows)
    assert out["usage"]["output_tokens"] == sum(m.output_tokens or 0 for m in rows)
    assert close(out["usage"]["cost_usd"], round(sum(m.cost_usd or 0 for m in rows), 6))


@pytest.mark.parametrize("by", ["task_type", "model", "executor", "pipeline", "stage", "variant"])
@pytest.mark.parametrize("filters", [FILTERS[0], FILTERS[1], FILTERS[3]], ids=["none", "since", "failed"])
def test_each_breakdown_matches_the_reference(filled: Store, by: str, filters: dict) -> None:
    rows = [m for m in ROWS if keep(**filters)(m)]
    out = summarize(filled, by=by, **filters)
    expected = reference_groups(rows, by)
    assert set(out["group_by"]) == set(expected)
    for key, want in expected.items():
        got = out["group_by"][key]
        for field, value in want.items():
            assert close(got[field], value), (by, key, field, got[field], value)
    # the busiest group first
    counts = [g["count"] for g in out["group_by"].values()]
    assert counts == sorted(counts, reverse=True)
    assert out["by"] == by
    assert out["by_task_type"] == summarize(filled, **filters)["by_task_type"]


def test_by_task_type_and_by_model_are_always_there(filled: Store) -> None:
    out = summarize(filled)
    for name, by in (("by_task_type", "task_type"), ("by_model", "model")):
        expected = reference_groups(ROWS, by)
        assert set(out[name]) == set(expected)
        for key, want in expected.items():
            for field, value in want.items():
                assert close(out[name][key][field], value), (name, key, field)
    assert "(none)" in out["by_model"]  # shell stages have no model
    assert "group_by" not in out and "by" not in out


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([7.0], {"p50": 7.0, "p95": 7.0, "p99": 7.0, "max": 7.0}),
        ([4.0, 1.0, 3.0, 2.0], {"p50": 2.0, "p95": 4.0, "p99": 4.0, "max": 4.0}),
        ([float(i) for i in range(20, 0, -1)], {"p50": 10.0, "p95": 19.0, "p99": 20.0, "max": 20.0}),
        ([float(i) for i in range(1, 101)], {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}),
        ([5.0, 5.0, 5.0, 1.0], {"p50": 5.0, "p95": 5.0, "p99": 5.0, "max": 5.0}),
    ],
)
def test_nearest_rank_on_known_values(store: Store, durations: list[float], expected: dict) -> None:
    store.record_metrics(
        TaskMetric(f"t{i}", "impl", d, MetricStatus.COMPLETED, NOW - 60) for i, d in enumerate(durations)
    )
    execution = summarize(store)["execution_time"]
    assert {k: execution[f"{k}_seconds"] for k in expected} == expected


def test_nearest_rank_formula() -> None:
    assert [service.nearest_rank(95, n) for n in (1, 19, 20, 21, 100)] == [1, 19, 19, 20, 95]
    assert service.nearest_rank(50, 4) == 2 and service.nearest_rank(99, 1_000_000) == 990_000


def test_status_mapping_and_the_success_rate(store: Store) -> None:
    assert metric_status(StageStatus.SUCCEEDED) is MetricStatus.COMPLETED
    assert metric_status(StageStatus.FAILED) is MetricStatus.FAILED
    assert metric_status(StageStatus.FAILED, timed_out=True) is MetricStatus.TIMED_OUT
    assert metric_status(StageStatus.CANCELLED) is MetricStatus.CANCELLED
    assert metric_status(StageStatus.SKIPPED) is None
    statuses = ["completed"] * 6 + ["failed", "timed_out"] + ["cancelled"] * 5
    store.record_metrics(
        TaskMetric(f"t{i}", "impl", 1.0, MetricStatus(s), NOW - 60) for i, s in enumerate(statuses)
    )
    out = summarize(store)
    assert out["success_rate"] == {
        "completed": 6,
        "failed": 2,  # timed_out counts as failed
        "total": 8,  # cancelled counts in neither
        "rate": 0.75,
        "cancelled": 5,
        "timed_out": 1,
    }
    assert out["by_task_type"]["impl"]["success_rate"] == 0.75
    assert summarize(store, status="failed")["execution_time"]["count"] == 2
    assert summarize(store, status="timed_out")["execution_time"]["count"] == 1


def test_the_json_contract_key_by_key(filled: Store) -> None:
    out = json.loads(json.dumps(summarize(filled, by="executor")))
    # DESIGN §8 and the metrics spec: these names, at these places; extra keys are allowed
    assert {
        "execution_time",
        "success_rate",
        "usage",
        "by_task_type",
        "by_model",
        "daily",
        "group_by",
    } <= set(out)
    assert {"p50_seconds", "p95_seconds", "p99_seconds", "max_seconds", "count"} <= set(out["execution_time"])
    assert {"completed", "failed", "total", "rate"} <= set(out["success_rate"])
    assert {"input_tokens", "output_tokens", "cost_usd"} <= set(out["usage"])
    group_keys = {"count", "avg_duration", "p50_seconds", "p95_seconds", "success_rate", "cost_usd"}
    for section in ("by_task_type", "by_model", "group_by"):
        assert out[section]
        for entry in out[section].values():
            assert group_keys <= set(entry), section
    assert isinstance(out["by_task_type"]["spec"]["success_rate"], float)
    assert isinstance(out["by_model"]["claude"]["count"], int)
    assert isinstance(out["by_model"]["claude"]["avg_duration"], float)
    assert isinstance(out["execution_time"]["p50_seconds"], float | int)
    assert len(out["daily"]) == 14
    for day in out["daily"]:
        assert {"date", "runs", "success_rate"} <= set(day)


def test_an_empty_store_gives_zero_counts(store: Store) -> None:
    out = json.loads(json.dumps(summarize(store)))
    assert out["execution_time"] == {
        "p50_seconds": None,
        "p95_seconds": None,
        "p99_seconds": None,
        "max_seconds": None,
        "count": 0,
        "avg_seconds": None,
    }
    assert out["success_rate"] == {
        "completed": 0,
        "failed": 0,
        "total": 0,
        "rate": None,
        "cancelled": 0,
        "timed_out": 0,
    }
    assert out["usage"] == {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    assert out["by_task_type"] == {} and out["by_model"] == {}
    assert [d["runs"] for d in out["daily"]] == [0] * 14
    assert summarize(store, by="stage")["group_by"] == {}


def test_daily_counts_local_calendar_days_oldest_first(store: Store) -> None:
    today = date.fromtimestamp(NOW)
    midnight = datetime(today.year, today.month, today.day).timestamp()
    rows = [
        ("completed", midnight + 1),  # today
        ("failed", midnight - 1),  # yesterday, one second before midnight
        ("completed", midnight - 1),
        ("cancelled", midnight - 2),
        ("completed", midnight - 20 * DAY),  # before the chart
    ]
    store.record_metrics(
        TaskMetric(f"t{i}", "impl", 1.0, MetricStatus(s), at) for i, (s, at) in enumerate(rows)
    )
    daily = summarize(store)["daily"]
    assert [d["date"] for d in daily] == [(today - timedelta(days=13 - i)).isoformat() for i in range(14)]
    assert daily[-1] == {
        "date": today.isoformat(),
        "runs": 1,
        "success_rate": 1.0,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
    }
    assert (daily[-2]["runs"], daily[-2]["success_rate"], daily[-2]["cancelled"]) == (3, 0.5, 1)
    assert sum(d["runs"] for d in daily) == 4
    # the filters apply to the chart too
    assert sum(d["runs"] for d in summarize(store, since=midnight)["daily"]) == 1


def test_parse_since() -> None:
    assert service.parse_since("7d", now=NOW) == NOW - 7 * DAY
    assert service.parse_since("24h", now=NOW) == NOW - DAY
    assert service.parse_since("30m", now=NOW) == NOW - 1800
    assert service.parse_since("2026-05-01") == datetime(2026, 5, 1).timestamp()
    assert service.parse_since("2026-05-01T12:30") == datetime(2026, 5, 1, 12, 30).timestamp()
    assert service.parse_since("2026-05-01T00:00:00+00:00") == 1777593600.0
    for bad in ("yesterday", "7 days", "-3d", "", "2026-13-01"):
        with pytest.raises(UsageError, match="--since"):
            service.parse_since(bad, now=NOW)


def test_bad_by_and_status_are_usage_errors(store: Store) -> None:
    with pytest.raises(UsageError, match='--by "colour": not one of task_type, model'):
        summarize(store, by="colour")
    with pytest.raises(UsageError, match='--status "ok": not one of completed, failed'):
        summarize(store, status="ok")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("duration_seconds", -1.0, "duration -1.0: must be a number ≥ 0"),
        ("duration_seconds", float("nan"), "duration nan"),
        ("cost_usd", -0.5, "cost -0.5"),
        ("input_tokens", -3, "input tokens -3"),
        ("task_type", "", "task type: must not be empty"),
    ],
)
def test_invalid_metrics_are_refused(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {
        "task_id": "t",
        "task_type": "impl",
        "duration_seconds": 1.0,
        "status": MetricStatus.COMPLETED,
        "created_at": NOW,
    }
    with pytest.raises(UsageError, match=message):
        TaskMetric(**fields | {field: value})  # type: ignore[arg-type]


def test_record_stores_one_row_now(store: Store) -> None:
    metric = service.record(
        store, task_type="impl", duration=12.5, status="completed", model="claude", cost_usd=0.02, now=NOW
    )
    assert metric.created_at == NOW and metric.task_id
    out = summarize(store)
    assert out["by_model"]["claude"]["count"] == 1 and out["usage"]["cost_usd"] == 0.02
    with pytest.raises(UsageError, match="--status"):
        service.record(store, task_type="impl", duration=1, status="done")
