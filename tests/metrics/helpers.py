"""Random task metrics, and a reference summary computed the plain way: sort in Python."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from orchestrate.domain.metrics import MetricStatus, TaskMetric

NOW = datetime(2026, 5, 20, 15, 30).timestamp()  # local time
DAY = 86400.0

TASK_TYPES = ("spec", "impl", "review", "test")
MODELS = ("claude", "gpt", "cursor/auto", None)
EXECUTORS = ("claude-code", "subprocess", None)
PIPELINES = ("ci", "agents", None)
STAGES = ("build", "review", "write", None)
VARIANTS = ("a", "b", None)
COLUMN_OF = {"variant": "prompt_variant"}


def random_metrics(rng: random.Random, n: int, now: float = NOW, days: float = 20) -> list[TaskMetric]:
    out = []
    for i in range(n):
        model = rng.choice(MODELS)
        out.append(
            TaskMetric(
                task_id=f"t{i}",
                task_type=rng.choice(TASK_TYPES),
                # few distinct values: ties at the percentile ranks must not matter
                duration_seconds=rng.choice((rng.randint(1, 30), round(rng.expovariate(0.02), 3))),
                status=rng.choice(list(MetricStatus)),
                created_at=now - rng.uniform(0, days * DAY),
                model=model,
                executor=rng.choice(EXECUTORS),
                prompt_variant=rng.choice(VARIANTS),
                pipeline=rng.choice(PIPELINES),
                stage=rng.choice(STAGES),
                input_tokens=rng.randint(0, 5000) if model else None,
                output_tokens=rng.randint(0, 900) if model else None,
                cost_usd=rng.randint(0, 10_000) / 1e5 if model else None,
            )
        )
    return out


def percentile(values: Sequence[float], p: int) -> float | None:
    """Nearest rank, the textbook way: the value at rank ceil(p/100 * n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(p, 100) * len(ordered)))
    return ordered[rank - 1]


def keep(
    since: float | None = None, pipeline: str | None = None, status: str | None = None
) -> Callable[[TaskMetric], bool]:
    def test(m: TaskMetric) -> bool:
        if since is not None and m.created_at < since:
            return False
        if pipeline is not None and m.pipeline != pipeline:
            return False
        if status == "failed":
            return m.status in (MetricStatus.FAILED, MetricStatus.TIMED_OUT)
        return status is None or m.status == status

    return test


def success_rate(rows: Sequence[TaskMetric]) -> float | None:
    completed = sum(1 for m in rows if m.status == "completed")
    failed = sum(1 for m in rows if m.status in ("failed", "timed_out"))
    return completed / (completed + failed) if completed + failed else None


def reference_groups(rows: Sequence[TaskMetric], by: str) -> dict[str, dict[str, Any]]:
    column = COLUMN_OF.get(by, by)
    groups: dict[str, list[TaskMetric]] = {}
    for m in rows:
        value = getattr(m, column)
        groups.setdefault("(none)" if value is None else value, []).append(m)
    return {
        key: {
            "count": len(members),
            "avg_duration": sum(m.duration_seconds for m in members) / len(members),
            "p50_seconds": percentile([m.duration_seconds for m in members], 50),
            "p95_seconds": percentile([m.duration_seconds for m in members], 95),
            "success_rate": success_rate(members),
            "cost_usd": sum(m.cost_usd or 0 for m in members),
        }
        for key, members in groups.items()
    }
