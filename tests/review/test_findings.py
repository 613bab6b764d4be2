"""Each review rule over a history built in the store, and its figures against a reference."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrate.domain.events import RunWaiting
from orchestrate.domain.metrics import MetricStatus
from orchestrate.domain.observe import PipelineType, ReportedPipeline, ReportStatus
from orchestrate.domain.review import Finding, FindingKind, Severity
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.review.service import review
from orchestrate.store import Store
from tests.review.helpers import (
    DAY,
    HOUR,
    add_approval,
    add_attempt,
    add_run,
    median,
    nearest_rank,
    settings_for,
)

NOW = time.time()


def findings(workspace: Path, store: Store, kind: FindingKind, now: float = NOW) -> list[Finding]:
    return [f for f in review(settings_for(workspace), store, now).findings if f.kind is kind]


def configure(workspace: Path, text: str) -> None:
    (workspace / "orchestrate.yaml").write_text(text)


def test_a_running_run_without_a_transition_for_stale_after_is_stale(workspace: Path, store: Store) -> None:
    old = add_run(
        store, "ci", at=NOW - 7 * HOUR, status=RunStatus.RUNNING, stages={"build": StageStatus.RUNNING}
    )
    recent = add_run(
        store, "ci", at=NOW - HOUR, status=RunStatus.RUNNING, stages={"build": StageStatus.RUNNING}
    )
    found = findings(workspace, store, FindingKind.STALE_RUN)
    assert [f.subject for f in found] == [old]
    (f,) = found
    assert f.severity is Severity.HIGH and f.runs == (old,) and f.pipeline == "ci"
    assert f.details["process_alive"] is False and f.details["idle_seconds"] >= 7 * HOUR
    assert f"orchestrate pipeline resume {old}" in f.action
    # the threshold comes from orchestrate.yaml: the workspace's stale_after, or review.stale_after
    configure(workspace, "stale_after: 30m\n")
    assert {f.subject for f in findings(workspace, store, FindingKind.STALE_RUN)} == {old, recent}
    configure(workspace, "stale_after: 30m\nreview: {stale_after: 8h}\n")
    assert findings(workspace, store, FindingKind.STALE_RUN) == []


def test_a_run_waiting_for_approval_is_not_stale(workspace: Path, store: Store) -> None:
    run = add_run(
        store, "cd", at=NOW - 2 * DAY, status=RunStatus.RUNNING, stages={"gate": StageStatus.RUNNING}
    )
    store.writer(run).emit(RunWaiting(run, NOW - 2 * DAY, True))
    assert store.run_state(run).status is RunStatus.WAITING_APPROVAL
    assert findings(workspace, store, FindingKind.STALE_RUN) == []


def test_a_reported_pipeline_with_no_report_for_stale_after(workspace: Path, store: Store) -> None:
    reports = store.reports()
    for pid, updated in (("p-old", NOW - 7 * HOUR), ("p-new", NOW - HOUR)):
        reports.create_pipeline(
            ReportedPipeline(pid, PipelineType.CUSTOM, pid, ReportStatus.RUNNING, NOW - DAY, updated),
            ["work"],
        )
    (f,) = findings(workspace, store, FindingKind.STALE_REPORT)
    assert f.subject == "p-old" and f.details["idle_seconds"] >= 7 * HOUR
    assert f.action.startswith("orchestrate report show p-old")


def test_the_same_stage_failing_in_three_consecutive_runs(workspace: Path, store: Store) -> None:
    ok, fail, skip = StageStatus.SUCCEEDED, StageStatus.FAILED, StageStatus.SKIPPED
    history = [  # oldest first
        {"build": ok, "test": ok},
        {"build": ok, "test": fail},
        {"build": ok, "test": fail},
        {"build": ok, "test": skip},  # did not run: neither breaks nor extends the streak
        {"build": ok, "test": fail},
    ]
    ids = [
        add_run(
            store,
            "ci",
            at=NOW - (10 - i) * HOUR,
            status=RunStatus.FAILED if fail in s.values() else RunStatus.SUCCEEDED,
            stages=s,
        )
        for i, s in enumerate(history)
    ]
    # another pipeline fails twice in a row only
    for i in range(2):
        add_run(store, "docs", at=NOW - (5 - i) * HOUR, status=RunStatus.FAILED, stages={"build": fail})
    (f,) = findings(workspace, store, FindingKind.REPEATED_FAILURE)
    assert f.subject == "ci/test" and f.severity is Severity.HIGH
    assert f.runs == (ids[4], ids[2], ids[1])  # newest first
    assert f.details["consecutive"] == 3
    assert f.action == f"orchestrate pipeline logs {ids[4]} test"
    configure(workspace, "review: {consecutive_failures: 2}\n")
    assert {f.subject for f in findings(workspace, store, FindingKind.REPEATED_FAILURE)} == {
        "ci/test",
        "docs/build",
    }


def test_timeout_pattern_at_thirty_percent_of_recent_attempts(workspace: Path, store: Store) -> None:
    statuses = [MetricStatus.TIMED_OUT] * 3 + [MetricStatus.COMPLETED] * 6 + [MetricStatus.FAILED]
    runs = [add_attempt(store, "ci", "e2e", at=NOW - HOUR + i, status=s) for i, s in enumerate(statuses)]
    # older attempts outside the window of 10 do not count
    for i in range(5):
        add_attempt(store, "ci", "e2e", at=NOW - DAY + i, status=MetricStatus.TIMED_OUT)
    # 2 of 10 is below 30%
    for i in range(10):
        add_attempt(
            store,
            "ci",
            "unit",
            at=NOW - HOUR + i,
            status=MetricStatus.TIMED_OUT if i < 2 else MetricStatus.COMPLETED,
        )
    (f,) = findings(workspace, store, FindingKind.TIMEOUT_PATTERN)
    assert f.subject == "ci/e2e"
    assert (f.details["timed_out"], f.details["attempts"], f.details["ratio"]) == (3, 10, 0.3)
    assert set(f.runs) == set(runs[:3])
    configure(workspace, "review: {timeout_ratio: 0.2}\n")
    assert {f.subject for f in findings(workspace, store, FindingKind.TIMEOUT_PATTERN)} == {
        "ci/e2e",
        "ci/unit",
    }


def test_duration_regression_compares_p95_of_the_last_window_with_the_one_before(
    workspace: Path, store: Store
) -> None:
    before = [10.0, 11, 9, 12, 10, 10.5, 9.5, 11.5, 12.5, 13]
    after = [15.0, 16, 14, 17, 21, 15, 16, 18, 19, 20]
    for i, d in enumerate(before + after):  # chronological
        add_attempt(store, "ci", "build", at=NOW - DAY + i * 60, duration=d)
    steady = [10.0, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    for i, d in enumerate(steady + [x * 1.4 for x in steady]):
        add_attempt(store, "ci", "lint", at=NOW - DAY + i * 60, duration=d)
    (f,) = findings(workspace, store, FindingKind.DURATION_REGRESSION)
    assert f.subject == "ci/build"
    assert f.details["p95_seconds"] == nearest_rank(after, 95) == 21
    assert f.details["previous_p95_seconds"] == nearest_rank(before, 95) == 13
    assert f.details["ratio"] == round(21 / 13, 4)
    # too few attempts for two full windows: nothing to compare
    configure(workspace, "review: {duration_window: 11}\n")
    assert findings(workspace, store, FindingKind.DURATION_REGRESSION) == []


def test_a_run_costing_three_times_its_pipelines_median(workspace: Path, store: Store) -> None:
    costs = [1.0, 1.2, 0.9, 1.1, 1.0, 3.5]
    runs = []
    for i, cost in enumerate(costs):
        run = add_attempt(store, "agents", "write", at=NOW - HOUR + i, cost=cost * 0.25)
        add_attempt(store, "agents", "review", at=NOW - HOUR + i, cost=cost * 0.75, run_id=run)
        runs.append(run)
    (f,) = findings(workspace, store, FindingKind.COST_ANOMALY)
    assert f.subject == runs[-1] and f.runs == (runs[-1],)
    assert f.details["median_usd"] == median(costs) == 1.05
    assert f.details["cost_usd"] == 3.5
    # fewer runs than cost_min_runs: no median to judge by
    configure(workspace, "review: {cost_min_runs: 7}\n")
    assert findings(workspace, store, FindingKind.COST_ANOMALY) == []


def test_an_approval_pending_three_times_longer_than_its_pipelines_median(
    workspace: Path, store: Store
) -> None:
    db = workspace / "orchestrate.db"
    waits = [60.0, 120.0, 600.0]
    for w in waits:
        run = add_run(store, "cd", at=NOW - DAY)
        add_approval(db, run, created=NOW - DAY, decided=NOW - DAY + w, status="approved")
    stuck_run = add_run(
        store, "cd", at=NOW - HOUR, status=RunStatus.RUNNING, stages={"gate": StageStatus.RUNNING}
    )
    stuck = add_approval(db, stuck_run, created=NOW - 3 * median(waits) - 5)
    fresh_run = add_run(
        store, "cd", at=NOW - HOUR, status=RunStatus.RUNNING, stages={"gate": StageStatus.RUNNING}
    )
    add_approval(db, fresh_run, created=NOW - 3 * median(waits) + 5)
    (f,) = findings(workspace, store, FindingKind.STUCK_APPROVAL)
    assert f.subject == stuck and f.runs == (stuck_run,)
    assert f.details["median_decision_seconds"] == 120.0
    assert f.action == f"orchestrate approval show {stuck}   (remind the approvers, or delegate)"


def test_duplicate_pending_runs_of_a_pipeline_with_the_same_variables(workspace: Path, store: Store) -> None:
    a = add_run(store, "deploy", at=NOW - 60, status=RunStatus.PENDING, variables={"env": "prod"})
    b = add_run(store, "deploy", at=NOW - 30, status=RunStatus.PENDING, variables={"env": "prod"})
    add_run(store, "deploy", at=NOW - 20, status=RunStatus.PENDING, variables={"env": "staging"})
    (f,) = findings(workspace, store, FindingKind.DUPLICATE_RUNS)
    assert f.runs == (b, a) and f.severity is Severity.LOW
    assert f.action == f"orchestrate pipeline cancel {b}   (keep {a})"
    assert f.details["variables"] == {"env": "prod"}


def test_findings_are_ordered_most_severe_first_and_json_names_the_evidence(
    workspace: Path, store: Store
) -> None:
    add_run(store, "deploy", at=NOW - 60, status=RunStatus.PENDING)
    add_run(store, "deploy", at=NOW - 30, status=RunStatus.PENDING)
    old = add_run(store, "ci", at=NOW - 7 * HOUR, status=RunStatus.RUNNING, stages={"b": StageStatus.RUNNING})
    result = review(settings_for(workspace), store, NOW).findings
    assert [f.kind for f in result] == [FindingKind.STALE_RUN, FindingKind.DUPLICATE_RUNS]
    data = result[0].to_json()
    assert data["evidence"]["runs"] == [old] and data["fingerprint"] == f"stale_run:{old}"
    assert set(data) >= {"kind", "severity", "subject", "summary", "suggested_action", "evidence"}
