"""Agent self-reporting (DESIGN §7): Pipeline → Step → Job, and the rules over them.

Stdlib only. Agents report their own work; nothing here executes anything. A job's
status moves pending → running → succeeded | failed | cancelled; a step's status is
the aggregate of its jobs' and an open pipeline's the aggregate of its steps' (a
failed job fails its step and its pipeline). Durations are derived from the job
timestamps at read time, never stored. Staleness is computed at read time too.

Status tokens are the run tokens (``RunStatus``), so a reported pipeline reads like a
run; ``parse_status`` also takes the words agents use (``success``, ``failure``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrate.domain.errors import UsageError


class ReportStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


REPORT_TERMINAL = frozenset({ReportStatus.SUCCEEDED, ReportStatus.FAILED, ReportStatus.CANCELLED})
REPORT_OPEN = frozenset({ReportStatus.PENDING, ReportStatus.RUNNING})

_ALIASES = {
    "success": ReportStatus.SUCCEEDED,
    "succeeded": ReportStatus.SUCCEEDED,
    "failure": ReportStatus.FAILED,
    "failed": ReportStatus.FAILED,
    "running": ReportStatus.RUNNING,
    "pending": ReportStatus.PENDING,
    "cancelled": ReportStatus.CANCELLED,
    "canceled": ReportStatus.CANCELLED,
}


def parse_status(token: str, *, allowed: Iterable[ReportStatus] = tuple(ReportStatus)) -> ReportStatus:
    """``success``/``failure`` (the seed's words) or a status token; UsageError otherwise."""
    status = _ALIASES.get(token.strip().lower())
    choices = tuple(allowed)
    if status is None or status not in choices:
        words = {
            ReportStatus.SUCCEEDED: "success",
            ReportStatus.FAILED: "failure",
        }
        names = ", ".join(words.get(s, s.value) for s in choices)
        raise UsageError(f'unknown status "{token}"', hint=f"use one of: {names}")
    return status


class PipelineType(StrEnum):
    TICKET_WORK = "ticket_work"
    SPRINT_CLOSE = "sprint_close"
    CUSTOM = "custom"


DEFAULT_STEPS: dict[PipelineType, tuple[str, ...]] = {
    PipelineType.TICKET_WORK: ("research", "coding", "wrap-up"),
    PipelineType.SPRINT_CLOSE: (),
    PipelineType.CUSTOM: (),
}


def parse_type(token: str) -> PipelineType:
    try:
        return PipelineType(token.strip().lower().replace("-", "_"))
    except ValueError:
        raise UsageError(
            f'unknown pipeline type "{token}"', hint=f"use one of: {', '.join(t.value for t in PipelineType)}"
        ) from None


def check_name(kind: str, name: str) -> str:
    """A step or job name: printable, one line, at most 200 characters."""
    name = name.strip()
    if not name or len(name) > 200 or any(c in name for c in "\n\r\t\0"):
        raise UsageError(f"{kind} name {name!r} must be one line of 1 to 200 characters")
    return name


def aggregate(statuses: Iterable[ReportStatus]) -> ReportStatus:
    """A step's status from its jobs' (the seed's min()): failed wins, then running; pending if nothing started."""
    seen = set(statuses)
    if not seen:
        return ReportStatus.PENDING
    if ReportStatus.FAILED in seen:
        return ReportStatus.FAILED
    if ReportStatus.RUNNING in seen:
        return ReportStatus.RUNNING
    if ReportStatus.PENDING in seen:
        # some jobs done, others waiting: the step is under way
        return ReportStatus.RUNNING if seen - {ReportStatus.PENDING} else ReportStatus.PENDING
    if ReportStatus.SUCCEEDED in seen:
        return ReportStatus.SUCCEEDED
    return ReportStatus.CANCELLED


def open_pipeline_status(step_statuses: Iterable[ReportStatus]) -> ReportStatus:
    """An unfinished pipeline is running, or failed as soon as one of its steps failed."""
    return ReportStatus.FAILED if ReportStatus.FAILED in set(step_statuses) else ReportStatus.RUNNING


def final_status(step_statuses: Iterable[ReportStatus]) -> ReportStatus:
    """The status ``finish`` gives when none is given: the aggregate of the steps that started.

    Steps that never had a job do not count: finishing ticket work without a wrap-up job
    still succeeds. A pipeline with no job at all succeeded (nothing failed).
    """
    started = [s for s in step_statuses if s is not ReportStatus.PENDING]
    status = aggregate(started)
    return ReportStatus.SUCCEEDED if status in REPORT_OPEN else status


DEFAULT_STALE_AFTER = 6 * 3600.0


def is_stale(
    status: ReportStatus | str, finished_at: float | None, updated_at: float, now: float, after: float
) -> bool:
    """Running, unfinished, and not updated for ``after`` seconds (computed at read time, no cron)."""
    return status == ReportStatus.RUNNING and finished_at is None and now - updated_at > after


def duration(started_at: float | None, finished_at: float | None, now: float) -> float | None:
    """finished - started, or now - started while it runs; None before it starts."""
    if started_at is None:
        return None
    return max(0.0, (finished_at if finished_at is not None else now) - started_at)


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (the rank ``metrics`` uses)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def overdue(
    elapsed: float, past_durations: Sequence[float], k: float = 3.0, min_runs: int = 10
) -> str | None:
    """Why a running stage is overdue: longer than ``k`` × the P95 of its own past durations.

    None when it is not, or when fewer than ``min_runs`` past durations exist (too little
    history to judge: the fixed stale threshold still applies).
    """
    if len(past_durations) < min_runs:
        return None
    limit = k * p95(past_durations)
    if elapsed <= limit:
        return None
    return (
        f"running {short_duration(elapsed)}, more than {k:g} × its P95 of {short_duration(p95(past_durations))} "
        f"over {len(past_durations)} past runs"
    )


def short_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@dataclass(frozen=True)
class ReportedJob:
    id: str
    pipeline_id: str
    step: str
    name: str
    status: ReportStatus
    created_at: float
    updated_at: float
    description: str | None = None
    summary: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    log_path: str | None = None  # relative to the workspace; None until the first append

    def duration(self, now: float) -> float | None:
        return duration(self.started_at, self.finished_at, now)


@dataclass(frozen=True)
class ReportedStep:
    name: str
    position: int
    status: ReportStatus
    jobs: tuple[ReportedJob, ...] = ()

    @property
    def started_at(self) -> float | None:
        starts = [j.started_at for j in self.jobs if j.started_at is not None]
        return min(starts) if starts else None

    @property
    def finished_at(self) -> float | None:
        if self.status not in REPORT_TERMINAL:
            return None
        ends = [j.finished_at for j in self.jobs if j.finished_at is not None]
        return max(ends) if ends else None

    def duration(self, now: float) -> float | None:
        return duration(self.started_at, self.finished_at, now)


@dataclass(frozen=True)
class ReportedPipeline:
    id: str
    type: PipelineType
    title: str
    status: ReportStatus
    created_at: float
    updated_at: float
    sprint: str | None = None
    finished_at: float | None = None
    summary: str | None = None
    created_by: str | None = None
    run_id: str | None = None  # the executed run whose stage reported it (ORCHESTRATE_RUN_ID)
    stage: str | None = None
    logs_cleaned_at: float | None = None
    job_count: int = 0
    steps: tuple[ReportedStep, ...] = ()  # empty in listings; the whole tree from ``pipeline()``

    def duration(self, now: float) -> float | None:
        return duration(self.created_at, self.finished_at, now)

    def stale(self, now: float, after: float) -> bool:
        return is_stale(self.status, self.finished_at, self.updated_at, now, after)

    @property
    def jobs(self) -> tuple[ReportedJob, ...]:
        return tuple(j for s in self.steps for j in s.jobs)


@dataclass(frozen=True)
class Page:
    pipelines: list[ReportedPipeline]
    total: int
    limit: int
    offset: int
    stale_after: float
    now: float = field(default_factory=time.time)

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.pipelines)
        return following if following < self.total else None
