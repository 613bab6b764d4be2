"""Goals and review findings (DESIGN §8): plain values and the rules that judge them.

A goal names a metric over the runs of some pipelines (linked by name or by label),
a target and maybe a deadline. Its value is always computed from the store; what
this module decides is how that value reads against the target and the trend:

    met        the current value meets the target
    missed     the deadline has passed and the target is not met
    stalled    not met, the goal's start is at least one window ago, and over the last window
               nothing moved toward the target (succeeded_runs: no run succeeded;
               the others: no finished run, or the value is no better than in the
               window before)
    behind     not met, not stalled, has a deadline, and the value projected to the
               deadline from the last window's change does not reach the target
    on_track   everything else: moving toward the target (and, with a deadline, fast
               enough), or too young to judge

A finding is one thing ``orchestrate review`` noticed: its kind, a severity, the
subject it is about (its fingerprint is kind + subject, what the cool-down of
auto-scheduling is keyed on), the evidence (run ids) and what to do next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any


class GoalMetric(StrEnum):
    SUCCEEDED_RUNS = "succeeded_runs"  # runs that succeeded since the goal's start; more is better
    SUCCESS_RATE = "success_rate"  # succeeded / (succeeded + failed) runs in the window
    P95_DURATION = "p95_duration"  # seconds, nearest-rank P95 of succeeded runs in the window
    COST = "cost"  # mean USD per finished run in the window (task metrics' cost_usd)


HIGHER_IS_BETTER = frozenset({GoalMetric.SUCCEEDED_RUNS, GoalMetric.SUCCESS_RATE})


class GoalStatus(StrEnum):
    MET = "met"
    ON_TRACK = "on_track"
    BEHIND = "behind"
    STALLED = "stalled"
    MISSED = "missed"


class LinkKind(StrEnum):
    PIPELINE = "pipeline"
    LABEL = "label"


@dataclass(frozen=True)
class Goal:
    name: str
    metric: GoalMetric
    target: float
    created_at: float
    since: float  # runs finished before this do not count (--since; default: when it was added)
    deadline: float | None = None
    created_by: str | None = None
    links: tuple[tuple[LinkKind, str], ...] = ()


@dataclass(frozen=True)
class GoalProgress:
    """A goal with its value now, in the previous window, and the verdict."""

    goal: Goal
    pipelines: tuple[str, ...]  # the pipelines its links resolve to (empty links: every pipeline)
    current: float | None  # None: no finished run to measure
    previous: float | None  # the window before (succeeded_runs: the count a window ago)
    runs: int  # finished runs the current value is computed from
    recent: int  # succeeded_runs: runs that succeeded in the last window
    status: GoalStatus
    why: str  # one line: how the status was decided
    fraction: float  # 0..1, for the progress bar
    evidence: tuple[str, ...] = ()  # run ids the value is computed from (newest first, at most 20)


def meets(metric: GoalMetric, value: float | None, target: float) -> bool:
    if value is None:
        return False
    return value >= target if metric in HIGHER_IS_BETTER else value <= target


def progress_fraction(metric: GoalMetric, value: float | None, target: float) -> float:
    if value is None:
        return 0.0
    if metric in HIGHER_IS_BETTER:
        return 1.0 if target <= 0 else max(0.0, min(1.0, value / target))
    if value <= target:
        return 1.0
    return max(0.0, min(1.0, target / value)) if value > 0 else 1.0


def judge(
    goal: Goal,
    current: float | None,
    previous: float | None,
    recent: int,
    now: float,
    window: float,
) -> tuple[GoalStatus, str]:
    """The status of a goal (see the module docstring) and why, in one line."""
    metric, target = goal.metric, goal.target
    if meets(metric, current, target):
        return GoalStatus.MET, f"{fmt_value(metric, current)} meets the target {fmt_value(metric, target)}"
    if goal.deadline is not None and now >= goal.deadline:
        return GoalStatus.MISSED, f"the deadline passed at {fmt_value(metric, current)}"
    age = now - goal.since
    span = fmt_duration(window)
    if metric is GoalMetric.SUCCEEDED_RUNS:
        moved: float | None = float(recent)
        stalled = recent == 0
        stall_why = f"no run succeeded in the last {span}"
    elif current is None:
        moved, stalled, stall_why = None, True, f"no finished run in the last {span}"
    elif previous is None:
        moved, stalled, stall_why = None, False, ""
    else:
        moved = current - previous if metric in HIGHER_IS_BETTER else previous - current
        stalled = moved <= 0
        stall_why = (
            f"{fmt_value(metric, current)} is no better than {fmt_value(metric, previous)} "
            f"in the {span} before"
        )
    if age >= window and stalled:
        return GoalStatus.STALLED, stall_why
    if goal.deadline is None:
        if age < window:
            return GoalStatus.ON_TRACK, f"younger than the {span} window"
        return GoalStatus.ON_TRACK, "moving toward the target"
    left = goal.deadline - now
    if moved is None or current is None:
        return GoalStatus.ON_TRACK, "too little history to project"
    if metric is GoalMetric.SUCCEEDED_RUNS:
        per_second = moved / max(min(window, age), 1.0)
        projected = current + per_second * left
    else:
        projected = current + (moved / window) * left * (1 if metric in HIGHER_IS_BETTER else -1)
    if meets(metric, projected, target):
        return GoalStatus.ON_TRACK, f"projected {fmt_value(metric, projected)} by the deadline"
    return GoalStatus.BEHIND, f"projected {fmt_value(metric, projected)} by the deadline, short of the target"


def p95(values: Sequence[float]) -> float | None:
    """Nearest rank: the value at rank ceil(0.95 n) of the sorted values (exact, no float rounding)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(Fraction(95, 100) * len(ordered))) - 1]


def fmt_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def fmt_value(metric: GoalMetric, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric is GoalMetric.SUCCEEDED_RUNS:
        return f"{value:g}"
    if metric is GoalMetric.SUCCESS_RATE:
        return f"{value:.0%}" if value * 100 == round(value * 100) else f"{value:.1%}"
    if metric is GoalMetric.P95_DURATION:
        return fmt_duration(value)
    return f"${value:.4g}"


# -- review findings ---------------------------------------------------------------------


class FindingKind(StrEnum):
    STALE_RUN = "stale_run"
    STALE_REPORT = "stale_report"  # a self-reported pipeline (DESIGN §7) with no news
    REPEATED_FAILURE = "repeated_failure"
    TIMEOUT_PATTERN = "timeout_pattern"
    DURATION_REGRESSION = "duration_regression"
    COST_ANOMALY = "cost_anomaly"
    STUCK_APPROVAL = "stuck_approval"
    DUPLICATE_RUNS = "duplicate_runs"
    STALLED_GOAL = "stalled_goal"


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    severity: Severity
    subject: str  # what it is about: a run id, pipeline/stage, a goal name...
    summary: str  # one line for people
    action: str  # the suggested next step (a command to type, mostly)
    runs: tuple[str, ...] = ()  # evidence: run ids, newest first
    pipeline: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # the figures behind it

    @property
    def fingerprint(self) -> str:
        return f"{self.kind.value}:{self.subject}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "severity": self.severity.value,
            "subject": self.subject,
            "fingerprint": self.fingerprint,
            "pipeline": self.pipeline,
            "summary": self.summary,
            "suggested_action": self.action,
            "evidence": {"runs": list(self.runs), **dict(self.details)},
        }


class ActionStatus(StrEnum):
    SCHEDULED = "scheduled"  # a run of the configured pipeline was created and started
    FAILED = "failed"  # claimed, but the run could not be started (error says why)


@dataclass(frozen=True)
class ReviewAction:
    """A pipeline started for a finding (``review --apply`` or the worker); one row, kept."""

    id: int
    fingerprint: str
    kind: FindingKind
    subject: str
    pipeline: str
    status: ActionStatus
    created_at: float
    cooldown_until: float
    run_id: str | None = None
    event_id: str | None = None
    by: str | None = None
    error: str | None = None
    finding: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyOutcome:
    """What ``--apply`` did about one finding: scheduled it, or why not."""

    finding: Finding
    pipeline: str
    action: ReviewAction | None  # None: skipped
    skipped: str | None = None  # e.g. "cooling down until ..." / "pipeline disabled"
