"""review --apply: the configured pipeline starts with the finding as its event, once per cool-down."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrate.domain.review import ActionStatus, FindingKind, ReviewAction
from orchestrate.domain.status import RUN_TERMINAL, RunStatus, StageStatus
from orchestrate.review import service
from orchestrate.services.control import cancel
from orchestrate.store import Store
from tests.cli.helpers import invoke, rows, store_at
from tests.review.helpers import HOUR, add_run, settings_for

NOW = time.time()

DIAG = """
name: diag
stages:
  - name: look
    run: printf 'kind=%s\\nsubject=%s\\nfirst=%s\\n' ${event.kind} ${event.subject} ${event.evidence.runs.0} > "$ORCHESTRATE_OUTPUT"
"""


def wait_for(
    store: Store, run_id: str, done: Callable[[RunStatus], bool], timeout: float = 30.0
) -> RunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = store.run_state(run_id).status
        if done(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {store.run_state(run_id).status}")


def duplicates(store: Store) -> tuple[str, str]:
    a = add_run(store, "deploy", at=NOW - 60, status=RunStatus.PENDING, variables={"env": "prod"})
    b = add_run(store, "deploy", at=NOW - 30, status=RunStatus.PENDING, variables={"env": "prod"})
    return a, b


@pytest.fixture
def configured(workspace: Path, pipeline_file: Callable[[str, str], Path]) -> Path:
    pipeline_file("diag", DIAG)
    (workspace / "orchestrate.yaml").write_text("review:\n  on: {duplicate_runs: diag}\n  cooldown: 2h\n")
    return workspace


def test_apply_starts_the_pipeline_with_the_finding_as_event_payload(configured: Path, store: Store) -> None:
    a, b = duplicates(store)
    s = settings_for(configured)
    found = service.review(s, store, NOW).findings
    (outcome,) = service.apply(s, store, found, NOW, by="alice")
    action = outcome.action
    assert action is not None and action.status is ActionStatus.SCHEDULED and action.run_id
    assert wait_for(store, action.run_id, lambda st: st in RUN_TERMINAL) is RunStatus.SUCCEEDED
    state = store.run_state(action.run_id)
    assert state.pipeline == "diag" and state.triggered_by == "review:duplicate_runs"
    assert state.started_by == "alice"
    assert dict(state.stages["look"].outputs) == {
        "kind": "duplicate_runs",
        "subject": found[0].subject,
        "first": b,
    }
    event = store.event(action.event_id or "")
    assert event is not None and event.name == "review.duplicate_runs"
    assert event.payload == found[0].to_json() and event.payload["evidence"]["runs"] == [b, a]


def test_the_same_finding_never_schedules_twice_within_its_cooldown(configured: Path, store: Store) -> None:
    duplicates(store)
    s = settings_for(configured)
    first = service.apply(s, store, service.review(s, store, NOW).findings, NOW)
    assert first[0].action is not None
    again = service.apply(s, store, service.review(s, store, NOW + 60).findings, NOW + 60)
    assert again[0].action is None and again[0].skipped and "cooling down until" in again[0].skipped
    db = configured / "orchestrate.db"
    assert rows(db, "select count(*) from review_actions") == [(1,)]
    assert rows(db, "select count(*) from runs where pipeline = 'diag'") == [(1,)]
    # after the cool-down (2h) it may schedule again
    later = service.apply(s, store, service.review(s, store, NOW + 2 * HOUR + 1).findings, NOW + 2 * HOUR + 1)
    assert later[0].action is not None and later[0].action.status is ActionStatus.SCHEDULED
    assert rows(db, "select count(*) from runs where pipeline = 'diag'") == [(2,)]
    for (run_id,) in rows(db, "select id from runs where pipeline = 'diag'"):
        wait_for(store, run_id, lambda st: st in RUN_TERMINAL)


def test_concurrent_claims_of_one_fingerprint_schedule_it_once(workspace: Path) -> None:
    db = workspace / "orchestrate.db"
    store_at(workspace).close()
    barrier = threading.Barrier(8)
    results: list[ReviewAction | tuple[float, float]] = []

    def claim() -> None:
        with store_at(workspace) as own:  # eight connections, as eight processes would have
            barrier.wait()
            results.append(
                own.review().claim("stale_run:r1", FindingKind.STALE_RUN, "r1", "diag", {}, NOW, 3600.0, "t")
            )

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(isinstance(r, ReviewAction) for r in results) == 1
    assert len(results) == 8
    assert rows(db, "select count(*) from review_actions") == [(1,)]


def test_a_pipeline_with_requires_approval_waits_for_a_person(
    workspace: Path, store: Store, pipeline_file: Callable[[str, str], Path]
) -> None:
    pipeline_file(
        "heal",
        """
        name: heal
        stages:
          - name: approve-fix
            requires_approval: true
            approvers: [alice]
          - name: fix
            run: echo fixing ${event.subject}
        """,
    )
    (workspace / "orchestrate.yaml").write_text("review: {on: {duplicate_runs: heal}}\n")
    duplicates(store)
    s = settings_for(workspace)
    (outcome,) = service.apply(s, store, service.review(s, store, NOW).findings, NOW)
    assert outcome.action is not None and outcome.action.run_id
    run_id = outcome.action.run_id
    try:
        assert wait_for(
            store, run_id, lambda st: st is not RunStatus.PENDING and st is not RunStatus.RUNNING
        ) is (RunStatus.WAITING_APPROVAL)
        (request,) = [r for r in store.approval_requests(pending_only=True) if r.run_id == run_id]
        assert request.stage == "approve-fix"
        assert str(store.run_state(run_id).stages["fix"].status) == "pending"
    finally:
        cancel(store, run_id, "test")


def test_auto_schedule_only_when_enabled_and_by_the_worker(configured: Path, store: Store) -> None:
    duplicates(store)
    s = settings_for(configured)
    assert service.auto_schedule(s, store, NOW) == []
    assert store.review().actions(10) == []
    (configured / "orchestrate.yaml").write_text(
        "review:\n  auto_schedule: true\n  on: {duplicate_runs: diag}\n"
    )
    s = settings_for(configured)
    (outcome,) = service.auto_schedule(s, store, NOW)
    assert outcome.action is not None and outcome.action.by == "worker"
    assert service.auto_schedule(s, store, NOW + 1)[0].action is None  # cooling down (24h default)
    (recorded,) = store.review().actions(10)
    assert recorded.cooldown_until == NOW + 24 * HOUR
    wait_for(store, recorded.run_id or "", lambda st: st in RUN_TERMINAL)


def test_cli_apply_history_and_check(configured: Path, store: Store) -> None:
    result = invoke("review", "--check")
    assert result.exit_code == 0, result.output
    assert "no findings" in result.output
    duplicates(store)
    result = invoke("review", "--check", "--json")
    assert result.exit_code == 1
    assert [f["kind"] for f in json.loads(result.output)["findings"]] == ["duplicate_runs"]
    result = invoke("review", "--apply")
    assert result.exit_code == 0, result.output
    assert "scheduled duplicate_runs:deploy@" in result.output and "→ diag: run " in result.output
    result = invoke("review", "--apply", "--json")
    assert result.exit_code == 0
    (applied,) = json.loads(result.output)["applied"]
    assert applied["scheduled"] is False and "cooling down" in applied["skipped"]
    result = invoke("review", "--history", "--json")
    (action,) = json.loads(result.output)
    assert (
        action["pipeline"] == "diag"
        and action["status"] == "scheduled"
        and action["kind"] == "duplicate_runs"
    )
    assert action["finding"]["kind"] == "duplicate_runs"
    result = invoke("review", "--history")
    assert (
        result.exit_code == 0 and "duplicate_runs:deploy@" in result.output and action["run"] in result.output
    )
    wait_for(store, action["run"], lambda st: st in RUN_TERMINAL)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("review: {cooldwn: 1h}\n", 'review.cooldwn: unknown key\nhint: did you mean "cooldown"?'),
        ("review: {on: {repeated_failures: diag}}\n", "review.on.repeated_failures: not a finding kind"),
        ("review: {timeout_ratio: lots}\n", "review.timeout_ratio: 'lots' is out of range: must be a share"),
        ("review: {cooldown: 2 days}\n", "review.cooldown:"),
        ("review: {on: {stale_run: nosuch}}\n", "review.on.stale_run: pipeline nosuch:"),
    ],
)
def test_a_bad_review_configuration_is_one_clear_error(
    workspace: Path, store: Store, config: str, message: str
) -> None:
    (workspace / "orchestrate.yaml").write_text(config)
    add_run(store, "ci", at=NOW - 7 * HOUR, status=RunStatus.RUNNING, stages={"b": StageStatus.RUNNING})
    result = invoke("review", "--apply")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert rows(workspace / "orchestrate.db", "select count(*) from review_actions") == [(0,)]
