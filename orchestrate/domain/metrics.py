"""Task metrics (DESIGN §8): one row per finished stage attempt or self-reported agent job.

The fields are the metrics spec's ``TaskMetric`` (task_id, task_type, model, executor,
duration_seconds, status, created_at, prompt_variant, skill_version) plus where the
work ran (pipeline, run, stage, attempt) and what it used (tokens, cost).

Status mapping from a stage attempt (``metric_status``): succeeded → completed,
failed → failed, or timed_out when the attempt hit its timeout, cancelled →
cancelled. For success rates timed_out counts as failed, and cancelled counts in
neither: a cancelled attempt says nothing about whether the work succeeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrate.domain.errors import UsageError
from orchestrate.domain.status import StageStatus


class MetricStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


METRIC_SUCCEEDED = frozenset({MetricStatus.COMPLETED})
# Failures for the success rate; cancelled attempts are in neither set.
METRIC_FAILED = frozenset({MetricStatus.FAILED, MetricStatus.TIMED_OUT})


def metric_status(status: StageStatus, timed_out: bool = False) -> MetricStatus | None:
    """The metric status of a finished stage attempt; None for one that did not run (skipped...)."""
    if status is StageStatus.SUCCEEDED:
        return MetricStatus.COMPLETED
    if status is StageStatus.FAILED:
        return MetricStatus.TIMED_OUT if timed_out else MetricStatus.FAILED
    if status is StageStatus.CANCELLED:
        return MetricStatus.CANCELLED
    return None


def parse_metric_status(value: str, option: str = "--status") -> MetricStatus:
    try:
        return MetricStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in MetricStatus)
        raise UsageError(f'{option} "{value}": not one of {allowed}') from None


def attempt_task_id(run_id: str, stage: str, attempt: int) -> str:
    """The task id of a stage attempt: ``RUN/STAGE/ATTEMPT``."""
    return f"{run_id}/{stage}/{attempt}"


@dataclass(frozen=True)
class TaskMetric:
    """One measured piece of work. Invalid values raise UsageError (exit 2) when built."""

    task_id: str
    task_type: str
    duration_seconds: float
    status: MetricStatus
    created_at: float  # epoch seconds, when the work finished
    model: str | None = None
    executor: str | None = None
    prompt_variant: str | None = None
    skill_version: str | None = None
    pipeline: str | None = None
    run_id: str | None = None
    stage: str | None = None
    attempt: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None

    def __post_init__(self) -> None:
        if not self.task_type:
            raise UsageError("task type: must not be empty")
        if not self.task_id:
            raise UsageError("task id: must not be empty")
        _non_negative("duration", self.duration_seconds)
        _non_negative("cost", self.cost_usd)
        _non_negative("input tokens", self.input_tokens)
        _non_negative("output tokens", self.output_tokens)
        if not isinstance(self.status, MetricStatus):
            object.__setattr__(self, "status", parse_metric_status(str(self.status), "status"))


def _non_negative(what: str, value: float | None) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise UsageError(f"{what} {value}: must be a number ≥ 0")


@dataclass(frozen=True)
class MetricFilter:
    """Which rows an aggregate covers; every field None: all of them."""

    since: float | None = None  # created_at ≥ since
    pipeline: str | None = None
    status: MetricStatus | None = None  # failed keeps timed_out too (it counts as failed)

    @property
    def statuses(self) -> tuple[str, str] | None:
        """The stored statuses the status filter keeps, as two SQL parameters."""
        if self.status is None:
            return None
        if self.status is MetricStatus.FAILED:
            return (MetricStatus.FAILED.value, MetricStatus.TIMED_OUT.value)
        return (self.status.value, self.status.value)


@dataclass
class Totals:
    """Additive aggregates of a set of rows: folding groups gives the totals of their union."""

    count: int = 0
    completed: int = 0
    failed: int = 0  # timed_out included
    timed_out: int = 0
    cancelled: int = 0
    duration_seconds: float = 0.0  # the sum
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)

    def add_status(self, status: MetricStatus, count: int) -> None:
        if count == 0:
            return
        self.count += count
        self.by_status[status.value] = self.by_status.get(status.value, 0) + count
        if status in METRIC_SUCCEEDED:
            self.completed += count
        elif status in METRIC_FAILED:
            self.failed += count
        elif status is MetricStatus.CANCELLED:
            self.cancelled += count
        if status is MetricStatus.TIMED_OUT:
            self.timed_out += count

    def add(self, other: Totals) -> None:
        for status, count in other.by_status.items():
            self.add_status(MetricStatus(status), count)
        self.duration_seconds += other.duration_seconds
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd

    @property
    def finished(self) -> int:
        """Rows that count for the success rate: completed + failed (cancelled excluded)."""
        return self.completed + self.failed

    @property
    def success_rate(self) -> float | None:
        return self.completed / self.finished if self.finished else None

    @property
    def avg_duration(self) -> float | None:
        return self.duration_seconds / self.count if self.count else None
