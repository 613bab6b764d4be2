"""Review fixes after QA (issue 10): queued duplicates, duration noise, threshold ranges, flags."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrate.domain.metrics import MetricStatus
from orchestrate.domain.review import Finding, FindingKind
from orchestrate.review.service import review
from orchestrate.store import Store
from tests.cli.helpers import invoke
from tests.review.helpers import DAY, HOUR, add_attempt, settings_for

NOW = time.time()


def findings(workspace: Path, store: Store, kind: FindingKind) -> list[Finding]:
    return [f for f in review(settings_for(workspace), store, NOW).findings if f.kind is kind]


def test_queued_runs_with_the_same_variables_are_duplicates(pipeline_file, workspace: Path) -> None:
    pipeline_file("nightly", "name: nightly\nvariables: {env: prod}\nstages:\n  - {name: a, run: 'true'}\n")
    first = invoke("pipeline", "run", "nightly", "--queue", "--json")
    second = invoke("pipeline", "run", "nightly", "--queue", "--json")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    a, b = json.loads(first.output)["id"], json.loads(second.output)["id"]
    result = invoke("review", "--json")
    assert result.exit_code == 0, result.output
    (found,) = [f for f in json.loads(result.output)["findings"] if f["kind"] == "duplicate_runs"]
    assert found["evidence"]["runs"] == [b, a]
    assert found["suggested_action"] == f"orchestrate pipeline cancel {b}   (keep {a})"
    assert "2 not started, 2 of them queued" in found["summary"]
    # A queued run waits for the worker, not for a process: never reported stale.
    assert not [f for f in json.loads(result.output)["findings"] if f["kind"] == "stale_run"]


def test_a_duration_regression_of_milliseconds_is_noise(workspace: Path, store: Store) -> None:
    before = [0.000985] * 10
    after = [0.00252] * 10
    for i, d in enumerate(before + after):
        add_attempt(store, "ci", "fast", at=NOW - DAY + i * 60, duration=d)
    assert findings(workspace, store, FindingKind.DURATION_REGRESSION) == []
    (workspace / "orchestrate.yaml").write_text("review: {min_duration: 0s}\n")
    (f,) = findings(workspace, store, FindingKind.DURATION_REGRESSION)
    assert f.subject == "ci/fast"
    (workspace / "orchestrate.yaml").write_text("review: {min_duration: 2m}\n")
    assert findings(workspace, store, FindingKind.DURATION_REGRESSION) == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "timeout_ratio: 3",
            "review.timeout_ratio: 3 is out of range: must be a share of attempts above 0 and at most 1",
        ),
        ("timeout_ratio: 0", "review.timeout_ratio: 0 is out of range"),
        ("duration_ratio: 0.5", "review.duration_ratio: 0.5 is out of range: must be a factor above 1"),
        ("cost_ratio: 1", "review.cost_ratio: 1 is out of range: must be a factor above 1"),
        ("approval_ratio: 0.9", "review.approval_ratio: 0.9 is out of range: must be a factor of at least 1"),
        ("min_duration: -1", "review.min_duration"),
    ],
)
def test_review_thresholds_out_of_range_are_errors_naming_the_key(
    workspace: Path, setting: str, message: str
) -> None:
    (workspace / "orchestrate.yaml").write_text(f"review: {{{setting}}}\n")
    result = invoke("review")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_ratios_at_the_edge_of_their_range_are_accepted(workspace: Path) -> None:
    (workspace / "orchestrate.yaml").write_text(
        "review: {timeout_ratio: 1, approval_ratio: 1, duration_ratio: 1.1}\n"
    )
    assert invoke("review").exit_code == 0


def test_apply_or_check_with_history_is_a_usage_error(workspace: Path) -> None:
    for flag in ("--apply", "--check"):
        result = invoke("review", "--history", flag)
        assert result.exit_code == 2
        assert f"{flag} cannot be used with --history" in result.output


def test_suggested_actions_hold_no_apostrophe(workspace: Path, store: Store) -> None:
    # ${event.suggested_action} lands in shell stages, often inside double quotes.
    for i in range(10):
        add_attempt(store, "ci", "e2e", at=NOW - HOUR + i, status=MetricStatus.TIMED_OUT)
    (f,) = findings(workspace, store, FindingKind.TIMEOUT_PATTERN)
    assert "'" not in f.action
    assert f.action.startswith("raise stages[e2e].timeout in the definition of ci, or find what hangs")


def test_the_workers_pass_counts_the_runs_its_review_started(
    pipeline_file, workspace: Path, store: Store
) -> None:
    from orchestrate.domain.status import RUN_TERMINAL, RunStatus
    from tests.review.helpers import add_run

    pipeline_file("diag", "name: diag\nstages:\n  - {name: look, run: 'echo ${event.kind}'}\n")
    (workspace / "orchestrate.yaml").write_text(
        "review:\n  auto_schedule: true\n  on: {duplicate_runs: diag}\n"
    )
    runs = [
        add_run(store, "deploy", at=at, status=RunStatus.PENDING, variables={"env": "prod"})
        for at in (NOW - 60, NOW - 30)
    ]
    result = invoke("worker", "--once")
    assert result.exit_code == 0, result.output
    (action,) = store.review().actions(10)
    assert action.run_id is not None
    assert "review: duplicate_runs → scheduled diag" in result.output
    # The two pending runs are taken over as orphans (children of the worker); the review's
    # run is started too, and counted with them.
    assert result.output.count("started run ") == 2
    assert "one pass done: started 3 run(s)" in result.output
    deadline = time.monotonic() + 30
    for run_id in (*runs, action.run_id):
        while store.run_state(run_id).status not in RUN_TERMINAL and time.monotonic() < deadline:
            time.sleep(0.1)
