"""Goal progress computed from runs in the store, each figure against a plain reference."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrate.domain.review import Goal, GoalMetric, GoalStatus, LinkKind, judge
from orchestrate.domain.status import RunStatus
from orchestrate.review import goals
from orchestrate.review.service import review
from orchestrate.store import Store
from tests.review.helpers import DAY, add_attempt, add_run, median, nearest_rank, settings_for

NOW = time.time()
WEEK = 7 * DAY
OK, FAILED, CANCELLED = RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED


def goal(metric: GoalMetric, target: float, *links: tuple[LinkKind, str], since: float = NOW - 60 * DAY,
         deadline: float | None = None) -> Goal:  # fmt: skip
    return Goal("g", metric, target, created_at=since, since=since, deadline=deadline, links=links)


def progress(workspace: Path, store: Store, g: Goal, now: float = NOW) -> goals.GoalProgress:
    labels = goals.pipeline_labels(settings_for(workspace), store)
    return goals.progress(store, g, labels, now, WEEK)


@pytest.fixture
def labelled(pipeline_file: Callable[[str, str], Path]) -> None:
    for name, labels in (("spec-a", "[specs]"), ("spec-b", "[specs, docs]"), ("other", "[]")):
        pipeline_file(name, f"name: {name}\nlabels: {labels}\nstages:\n  - name: work\n    run: 'true'\n")


def test_succeeded_runs_counts_runs_of_linked_labels_since_the_start(
    workspace: Path, store: Store, labelled: None
) -> None:
    since = NOW - 20 * DAY
    recent = [add_run(store, "spec-a", at=NOW - d * DAY, status=OK) for d in (1, 2)]
    add_run(store, "spec-a", at=NOW - 3 * DAY, status=FAILED)
    older = add_run(store, "spec-b", at=NOW - 10 * DAY, status=OK)
    add_run(store, "spec-b", at=NOW - 30 * DAY, status=OK)  # before the goal's start
    for d in (1, 2, 3):
        add_run(store, "other", at=NOW - d * DAY, status=OK)  # not linked
    p = progress(workspace, store, goal(GoalMetric.SUCCEEDED_RUNS, 5, (LinkKind.LABEL, "specs"), since=since))
    assert p.pipelines == ("spec-a", "spec-b")
    assert (p.current, p.previous, p.recent) == (3, 1, 2)
    assert set(p.evidence) == {*recent, older}
    assert p.fraction == pytest.approx(3 / 5)
    assert p.status is GoalStatus.ON_TRACK
    # a pipeline link and a label link add up; no links: every pipeline
    both = goal(
        GoalMetric.SUCCEEDED_RUNS, 5, (LinkKind.LABEL, "docs"), (LinkKind.PIPELINE, "other"), since=since
    )
    assert progress(workspace, store, both).current == 1 + 3
    assert progress(workspace, store, goal(GoalMetric.SUCCEEDED_RUNS, 5, since=since)).current == 6
    assert (
        progress(workspace, store, goal(GoalMetric.SUCCEEDED_RUNS, 6, since=since)).status is GoalStatus.MET
    )


def test_success_rate_is_over_the_last_window_and_ignores_cancelled_runs(
    workspace: Path, store: Store
) -> None:
    history = [(0.5, OK), (1, FAILED), (2, OK), (3, OK), (4, CANCELLED), (6.5, FAILED), (6.9, OK),
               (8, FAILED), (9, FAILED), (10, OK), (13, FAILED)]  # fmt: skip
    for days, status in history:
        add_run(store, "ci", at=NOW - days * DAY - 10, status=status, duration=10)
    p = progress(workspace, store, goal(GoalMetric.SUCCESS_RATE, 0.9))

    def rate(lo: float, hi: float) -> float:
        counted = [s for d, s in history if lo <= d < hi and s is not CANCELLED]
        return sum(s is OK for s in counted) / len(counted)

    assert p.current == pytest.approx(rate(0, 7)) == pytest.approx(4 / 6)
    assert p.previous == pytest.approx(rate(7, 14)) == pytest.approx(1 / 4)
    assert p.runs == 6
    assert p.status is GoalStatus.ON_TRACK and p.why == "moving toward the target"


def test_p95_duration_of_succeeded_runs_in_the_window(workspace: Path, store: Store) -> None:
    durations = [30.0, 45, 12, 80, 33, 61, 47, 52, 38, 90, 41, 29, 35, 60, 58, 44, 39, 71, 66, 50, 48]
    for i, d in enumerate(durations):
        add_run(store, "ci", at=NOW - DAY - i * 600, status=OK, duration=d)
    add_run(store, "ci", at=NOW - DAY, status=FAILED, duration=5000)  # failures do not count
    p = progress(workspace, store, goal(GoalMetric.P95_DURATION, 60))
    assert p.current == pytest.approx(nearest_rank(durations, 95)) == pytest.approx(80)
    assert p.fraction == pytest.approx(60 / 80)
    assert p.previous is None and p.status is GoalStatus.ON_TRACK


def test_cost_is_the_mean_cost_per_finished_run(workspace: Path, store: Store) -> None:
    costs = {"r-a": 0.40, "r-b": 1.10, "r-c": 0.25, "r-free": 0.0}
    for run_id, cost in costs.items():
        add_run(store, "agents", at=NOW - DAY, status=OK, run_id=run_id)
        if cost:
            add_attempt(store, "agents", "write", at=NOW - DAY, run_id=run_id, cost=cost / 2)
            add_attempt(store, "agents", "review", at=NOW - DAY, run_id=run_id, cost=cost / 2)
    p = progress(workspace, store, goal(GoalMetric.COST, 0.5, (LinkKind.PIPELINE, "agents")))
    assert p.current == pytest.approx(sum(costs.values()) / len(costs))
    assert p.status is GoalStatus.MET
    assert median(list(costs.values())) < p.current  # the mean, not the median


H = 3600.0


@pytest.mark.parametrize(
    ("metric", "target", "current", "previous", "recent", "deadline_in", "status"),
    [
        # succeeded_runs: projected = current + recent per window × time left
        (GoalMetric.SUCCEEDED_RUNS, 10, 10, 8, 2, None, GoalStatus.MET),
        (GoalMetric.SUCCEEDED_RUNS, 10, 2, 2, 0, 30 * DAY, GoalStatus.STALLED),
        (GoalMetric.SUCCEEDED_RUNS, 10, 2, 1, 1, 10 * DAY, GoalStatus.BEHIND),  # 2 + 10/7 < 10
        (GoalMetric.SUCCEEDED_RUNS, 10, 2, 0, 7, 10 * DAY, GoalStatus.ON_TRACK),  # 2 + 10 ≥ 10
        (GoalMetric.SUCCEEDED_RUNS, 10, 2, 0, 7, -H, GoalStatus.MISSED),
        # success_rate: the change over the last window, projected to the deadline
        (GoalMetric.SUCCESS_RATE, 0.9, 0.80, 0.85, 0, 30 * DAY, GoalStatus.STALLED),
        (GoalMetric.SUCCESS_RATE, 0.9, 0.80, 0.78, 0, 7 * DAY, GoalStatus.BEHIND),  # 0.82
        (GoalMetric.SUCCESS_RATE, 0.9, 0.80, 0.70, 0, 7 * DAY, GoalStatus.ON_TRACK),  # 0.90
        (GoalMetric.SUCCESS_RATE, 0.9, None, None, 0, 7 * DAY, GoalStatus.STALLED),  # nothing ran
        (GoalMetric.SUCCESS_RATE, 0.9, 0.5, None, 0, 7 * DAY, GoalStatus.ON_TRACK),  # cannot project yet
        # lower is better
        (GoalMetric.P95_DURATION, 300, 500, 600, 0, 7 * DAY, GoalStatus.BEHIND),  # 400 > 300
        (GoalMetric.P95_DURATION, 300, 500, 600, 0, 14 * DAY, GoalStatus.ON_TRACK),  # 300
        (GoalMetric.P95_DURATION, 300, 500, 450, 0, None, GoalStatus.STALLED),
        (GoalMetric.COST, 1.0, 0.8, 2.0, 0, None, GoalStatus.MET),
    ],
)
def test_status_from_the_deadline_and_the_trend(
    metric: GoalMetric,
    target: float,
    current: float | None,
    previous: float | None,
    recent: int,
    deadline_in: float | None,
    status: GoalStatus,
) -> None:
    g = Goal("g", metric, target, created_at=NOW - 30 * DAY, since=NOW - 30 * DAY,
             deadline=None if deadline_in is None else NOW + deadline_in)  # fmt: skip
    assert judge(g, current, previous, recent, NOW, WEEK)[0] is status


def test_a_young_goal_is_not_stalled_yet() -> None:
    g = Goal("g", GoalMetric.SUCCEEDED_RUNS, 10, created_at=NOW - DAY, since=NOW - DAY)
    assert judge(g, 0, 0, 0, NOW, WEEK) == (GoalStatus.ON_TRACK, "younger than the 7d window")


def test_a_stalled_goal_is_a_review_finding(workspace: Path, store: Store) -> None:
    add_run(store, "ci", at=NOW - 20 * DAY, status=OK)
    store.review().add_goal(
        goal(GoalMetric.SUCCEEDED_RUNS, 3, (LinkKind.PIPELINE, "ci"), since=NOW - 30 * DAY)
    )
    (f,) = [f for f in review(settings_for(workspace), store, NOW).findings if f.kind.value == "stalled_goal"]
    assert f.subject == "g" and f.details["current"] == 1 and f.action == "orchestrate goal show g"
    assert "no run succeeded in the last 7d" in f.summary
