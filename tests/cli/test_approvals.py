"""Approval gates end to end (issue 6): every decision made from a separate CLI process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows

CONFIG = """
groups:
  team-lead: [alice]
  devops: [bob, carol]
notify:
  - {type: file, path: logs/approvals.jsonl}
"""

DEPLOY = """
name: deploy
variables: {version: "1"}
stages:
  - name: build
    run: printf 'build %s %s\\n' ${approval.iteration} ${approval.feedback} >> builds.txt
  - name: deploy-prod
    run: echo "deploying"
    requires_approval: true
    approvers: [team-lead, devops]
    approval: {quorum: 2, timeout: TIMEOUT, on_timeout: reject, rewind_to: build, max_iterations: 3}
"""


def cli(workspace: Path, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRATE_USER": user} if user else dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def start_run(workspace: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "pipeline", "run", "deploy", "--plain"],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def pending_request(workspace: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = cli(workspace, "approval", "list", "--pending", "--json")
        found = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []
        if found:
            return str(found[0]["id"])
        time.sleep(0.1)
    raise AssertionError("no pending request appeared")


@pytest.fixture
def deploy(workspace: Path, pipeline_file):  # type: ignore[no-untyped-def]
    (workspace / "orchestrate.yaml").write_text(CONFIG)

    def write(timeout: str = "1h") -> Path:
        return pipeline_file("deploy", DEPLOY.replace("TIMEOUT", timeout))

    return write


def test_quorum_refusal_and_delegation_then_the_run_completes(deploy, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    deploy()
    run = start_run(workspace)
    request = pending_request(workspace)
    status = cli(
        workspace, "pipeline", "status", rows(workspace / "orchestrate.db", "select id from runs")[0][0]
    )
    assert "waiting_approval" in status.stdout and f"orchestrate approval approve {request}" in status.stdout
    refused = cli(workspace, "approval", "approve", request, "--as", "mallory")
    assert refused.returncode == 2 and "mallory is not an approver" in refused.stderr
    alice = cli(workspace, "approval", "approve", request, "--comment", "LGTM", user="alice")
    assert alice.returncode == 0 and "still waits" in alice.stdout  # quorum 2 not met
    again = cli(workspace, "approval", "approve", request, user="alice")
    assert again.returncode == 2 and "alice has already voted" in again.stderr
    assert cli(workspace, "approval", "delegate", request, "--to", "dave", "--as", "bob").returncode == 0
    loop = cli(workspace, "approval", "delegate", request, "--to", "bob", "--as", "dave")
    assert loop.returncode == 2 and "loop" in loop.stderr
    dave = cli(workspace, "approval", "approve", request, "--as", "dave")
    assert dave.returncode == 0 and "is approved" in dave.stdout
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 0, out
    assert "deploy-prod waiting for 2 of team-lead, devops" in out and "succeeded" in out
    shown = json.loads(cli(workspace, "approval", "show", request, "--json").stdout)
    kinds = [(a["kind"], a["user"]) for a in shown["audit"]]
    assert kinds == [
        ("requested", None),
        ("refused", "mallory"),
        ("approved", "alice"),
        ("refused", "alice"),
        ("delegated", "bob"),
        ("refused", "dave"),
        ("approved", "dave"),
    ]
    assert all(a["os_user"] for a in shown["audit"][1:])  # the OS account beside the claimed user
    notes = [json.loads(line) for line in (workspace / "logs/approvals.jsonl").read_text().splitlines()]
    assert notes[0]["kind"] == "approval_requested" and notes[0]["id"] == request


def test_a_rejection_fails_the_stage_with_its_reason(deploy, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    deploy()
    run = start_run(workspace)
    request = pending_request(workspace)
    rejected = cli(
        workspace, "approval", "reject", request, "--reason", "Needs more testing", "--as", "carol"
    )
    assert rejected.returncode == 0
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 1, out
    [(status, reason)] = rows(workspace / "orchestrate.db", "select status, reason from runs")
    assert (status, reason) == ("failed", "stage deploy-prod failed")
    [(stage_reason,)] = rows(
        workspace / "orchestrate.db", "select reason from stages where name = 'deploy-prod'"
    )
    assert stage_reason == "rejected by carol: Needs more testing"


def test_a_timeout_rejects_never_approves(deploy, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    deploy("1s")
    run = start_run(workspace)
    request = pending_request(workspace)
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 1, out
    shown = json.loads(cli(workspace, "approval", "show", request, "--json").stdout)
    assert shown["status"] == "timed_out" and shown["audit"][-1]["kind"] == "timed_out"


def test_push_back_reruns_from_the_named_stage_with_feedback_then_approve(deploy, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    deploy()
    run = start_run(workspace)
    first = pending_request(workspace)
    bad = cli(
        workspace, "approval", "push-back", first, "--reason", "x", "--rewind-to", "nope", "--as", "alice"
    )
    assert bad.returncode == 2 and "not a stage before deploy-prod" in bad.stderr
    pushed = cli(workspace, "approval", "push-back", first, "--reason", "add tests", "--as", "alice")
    assert pushed.returncode == 0, pushed.stderr
    deadline = time.monotonic() + 20
    while (second := pending_request(workspace)) == first:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for user in ("alice", "bob"):
        assert cli(workspace, "approval", "approve", second, "--as", user).returncode == 0
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 0, out
    assert (workspace / "builds.txt").read_text() == "build 1 \nbuild 2 add tests\n"
    history = json.loads(cli(workspace, "approval", "list", "--json").stdout)
    assert [(r["iteration"], r["status"]) for r in reversed(history)] == [(1, "pushed_back"), (2, "approved")]


def test_no_wait_exits_3_and_resume_continues_after_the_decision(deploy, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    deploy()
    parked = cli(workspace, "pipeline", "run", "deploy", "--no-wait", "--plain")
    assert parked.returncode == 3, parked.stdout + parked.stderr
    [(run_id, status)] = rows(workspace / "orchestrate.db", "select id, status from runs")
    assert status == "waiting_approval"
    request = pending_request(workspace)
    for user in ("alice", "carol"):
        cli(workspace, "approval", "approve", request, "--as", user)
    resumed = cli(workspace, "pipeline", "resume", run_id, "--plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert rows(workspace / "orchestrate.db", "select attempts from stages where name = 'build'") == [(1,)]


def test_evidence_change_invalidates_the_approval(workspace: Path, pipeline_file) -> None:  # type: ignore[no-untyped-def]
    (workspace / "dist").mkdir()
    (workspace / "dist" / "app.tar").write_text("v1")
    pipeline_file(
        "ev",
        """
        name: ev
        stages:
          - name: ship
            run: cat dist/app.tar
            requires_approval: true
            approvers: [alice]
            approval: {evidence: ["dist/**"]}
        """,
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "pipeline", "run", "ev", "--plain"],
        cwd=workspace,
        stdout=subprocess.PIPE,
        text=True,
    )
    first = pending_request(workspace)
    shown = json.loads(cli(workspace, "approval", "show", first, "--json").stdout)
    assert "(1 files)" in shown["evidence"]["dist/**"]
    (workspace / "dist" / "app.tar").write_text("v2 - changed after the request")
    cli(workspace, "approval", "approve", first, "--as", "alice")
    deadline = time.monotonic() + 20
    while (second := pending_request(workspace)) == first:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [
        a["kind"] for a in json.loads(cli(workspace, "approval", "show", first, "--json").stdout)["audit"]
    ][-1] == "invalidated"
    cli(workspace, "approval", "approve", second, "--as", "alice")
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 0, out
    [(run_id,)] = rows(workspace / "orchestrate.db", "select id from runs")
    assert (workspace / "logs" / run_id / "ship.log").read_text() == "v2 - changed after the request"


def test_prevent_self_approval(workspace: Path, pipeline_file) -> None:  # type: ignore[no-untyped-def]
    pipeline_file(
        "self",
        """
        name: self
        stages:
          - name: gate
            requires_approval: true
            approvers: [alice, bob]
            approval: {prevent_self_approval: true}
        """,
    )
    parked = cli(workspace, "pipeline", "run", "self", "--no-wait", user="alice")
    assert parked.returncode == 3
    request = pending_request(workspace)
    own = cli(workspace, "approval", "approve", request, user="alice")
    assert own.returncode == 2 and "may not approve it (prevent_self_approval)" in own.stderr
    assert cli(workspace, "approval", "approve", request, user="bob").returncode == 0


def test_escalation_extends_once_and_lets_the_escalation_approver_decide(
    workspace: Path, pipeline_file
) -> None:  # type: ignore[no-untyped-def]
    (workspace / "orchestrate.yaml").write_text(CONFIG)
    pipeline_file(
        "esc",
        """
        name: esc
        stages:
          - name: gate
            requires_approval: true
            approvers: [alice]
            approval: {timeout: 2s, on_timeout: escalate, escalate_to: [devops]}
        """,
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "pipeline", "run", "esc", "--plain"],
        cwd=workspace,
        stdout=subprocess.PIPE,
        text=True,
    )
    request = pending_request(workspace)
    deadline = time.monotonic() + 20
    while "escalated" not in [
        a["kind"] for a in json.loads(cli(workspace, "approval", "show", request, "--json").stdout)["audit"]
    ]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    approved = cli(workspace, "approval", "approve", request, "--as", "carol")  # carol is in devops
    assert approved.returncode == 0, approved.stderr
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 0, out
    kinds = [
        n["kind"] for n in map(json.loads, (workspace / "logs/approvals.jsonl").read_text().splitlines())
    ]
    assert kinds == ["approval_requested", "approval_escalated"]


def test_a_broken_groups_setting_is_refused_before_the_run(workspace: Path, pipeline_file) -> None:  # type: ignore[no-untyped-def]
    (workspace / "orchestrate.yaml").write_text("groups: [alice, bob]\n")
    pipeline_file("g", "name: g\nstages:\n  - {name: gate, requires_approval: true, approvers: [devops]}\n")
    result = invoke("pipeline", "run", "g")
    assert result.exit_code == 2
    assert "orchestrate.yaml: groups: must map each group name to a list of users" in result.output
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]
