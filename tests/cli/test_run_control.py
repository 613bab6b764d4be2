"""Runs steered from other terminals: detach, status, cancel, logs, history, prefixes, gc, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows, store_at

SLOW = """
name: slow
stages:
  - name: first
    run: echo first
  - name: wait
    run: echo waiting; [ -e {marker} ] && exit 0; echo $$$$ > {marker}; exec sleep 30
  - name: after
    run: echo after
"""


def wait_for(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def orchestrate(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_detach_then_cancel_from_another_terminal(pipeline_file, workspace: Path) -> None:
    marker = workspace / "waiting"
    pipeline_file("slow", SLOW.format(marker=marker))
    started = orchestrate(workspace, "pipeline", "run", "slow", "--detach")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert len(run_id) == 16 and "status" in started.stderr
    wait_for(lambda: marker.exists() and marker.read_text().strip())
    status = json.loads(invoke("pipeline", "status", run_id[:10], "--json").output)
    assert status["status"] == "running" and status["orphaned"] is False
    result = invoke("pipeline", "cancel", run_id[:10])
    assert result.exit_code == 0, result.output
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    assert f"run {run_id} cancelled (cancelled by" in result.output
    [(status_, reason, by, asked)] = rows(
        workspace / "orchestrate.db",
        "select status, reason, cancel_requested_by, cancel_requested_at from runs",
    )
    assert status_ == "cancelled" and reason == f"cancelled by {by}" and (user is None or by == user)
    stages = dict(rows(workspace / "orchestrate.db", "select name, status from stages"))
    assert stages == {"first": "succeeded", "wait": "cancelled", "after": "pending"}
    [(stopped,)] = rows(workspace / "orchestrate.db", "select finished_at from stages where name = 'wait'")
    assert stopped - asked < 1.0  # the run process noticed within a second (stored times)
    log = (workspace / "logs" / run_id / "run.log").read_text()
    assert "wait cancelled" in log  # the detached process's own output


def test_cancelling_a_run_whose_process_died_marks_it_cancelled(pipeline_file, workspace: Path) -> None:
    marker = workspace / "waiting"
    pipeline_file("slow", SLOW.format(marker=marker))
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "pipeline", "run", "slow", "--plain"],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: marker.exists() and marker.read_text().strip())
    os.killpg(proc.pid, signal.SIGKILL)  # the run process: a crash
    proc.wait()
    os.kill(int(marker.read_text()), signal.SIGKILL)  # its stage lives in its own session
    [(run_id,)] = rows(workspace / "orchestrate.db", "select id from runs")
    status = invoke("pipeline", "status", run_id)
    assert "running (orphaned)" in status.output and f"orchestrate pipeline resume {run_id}" in status.output
    result = invoke("pipeline", "cancel", run_id)
    assert result.exit_code == 0
    assert "(its process was gone)" in result.output
    assert rows(workspace / "orchestrate.db", "select status from runs") == [("cancelled",)]
    assert dict(rows(workspace / "orchestrate.db", "select name, status from stages"))["wait"] == "cancelled"
    again = invoke("pipeline", "cancel", run_id)
    assert again.exit_code == 2 and "already cancelled; nothing to cancel" in again.output


def test_resume_reruns_what_did_not_finish(pipeline_file, workspace: Path) -> None:
    marker = workspace / "waiting"
    pipeline_file("slow", SLOW.format(marker=marker))
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "pipeline", "run", "slow", "--plain"],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: marker.exists() and marker.read_text().strip())
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    os.kill(int(marker.read_text()), signal.SIGKILL)
    [(run_id,)] = rows(workspace / "orchestrate.db", "select id from runs")
    # resume runs the run's own definition (not the file) again: the marker makes it quick now
    result = invoke("pipeline", "resume", run_id[:8], "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    attempts = {s["name"]: [a["attempt"] for a in s["attempts"]] for s in record["stages"]}
    assert attempts == {"first": [1], "wait": [1, 2], "after": [1]}
    assert record["status"] == "succeeded"
    done = invoke("pipeline", "resume", run_id)
    assert done.exit_code == 0 and "already succeeded; nothing to resume" in done.output


def test_logs_whole_run_one_stage_one_attempt_and_follow(pipeline_file, workspace: Path) -> None:
    counter = workspace / "n"
    pipeline_file(
        "logs",
        f"""
        name: logs
        stages:
          - name: build
            run: n=$(cat {counter} 2>/dev/null || echo 0); echo "try $n"; echo $((n+1)) > {counter}; [ $n -ge 1 ]
            retry: {{max: 1, backoff: 0s}}
          - name: ship
            run: echo shipped
        """,
    )
    ran = invoke("pipeline", "run", "logs", "--json")
    run_id = json.loads(ran.output)["id"]
    whole = invoke("pipeline", "logs", run_id)
    assert "==> build (2 attempts) <==" in whole.output and "==> ship (1 attempt) <==" in whole.output
    assert invoke("pipeline", "logs", run_id, "build", "--attempt", "1").output == "try 0\n"
    assert invoke("pipeline", "logs", run_id, "build", "--attempt", "2").output == "try 1\n"
    assert invoke("pipeline", "logs", run_id, "ship").output == "shipped\n"
    followed = invoke("pipeline", "logs", run_id, "--follow")
    assert "build | try 0" in followed.output and "ship | shipped" in followed.output
    bad = invoke("pipeline", "logs", run_id, "shipp")
    assert bad.exit_code == 2 and 'did you mean "ship"?' in bad.output
    no_attempt = invoke("pipeline", "logs", run_id, "build", "--attempt", "5")
    assert no_attempt.exit_code == 2 and "no attempt 5" in no_attempt.output


def test_follow_a_detached_run_to_its_end(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "ticks",
        """
        name: ticks
        stages:
          - name: tick
            run: for i in 1 2 3; do echo tick $i; sleep 0.3; done
        """,
    )
    run_id = orchestrate(workspace, "pipeline", "run", "ticks", "--detach").stdout.strip()
    followed = orchestrate(workspace, "pipeline", "logs", run_id, "tick", "--follow")
    assert followed.returncode == 0
    assert followed.stdout == "tick 1\ntick 2\ntick 3\n"
    watched = orchestrate(workspace, "pipeline", "status", run_id, "--watch")
    assert watched.returncode == 0 and "succeeded" in watched.stdout


def test_run_id_prefixes_unknown_and_ambiguous(pipeline_file, workspace: Path) -> None:
    pipeline_file("one", "name: one\nstages:\n  - {name: a, run: 'true'}\n")
    ids = [json.loads(invoke("pipeline", "run", "one", "--json").output)["id"] for _ in range(2)]
    common = os.path.commonprefix(ids)  # noqa: RUF071 - a string prefix is what a run id prefix is
    ambiguous = invoke("pipeline", "status", common)
    assert ambiguous.exit_code == 2 and "is ambiguous" in ambiguous.output and ids[0] in ambiguous.output
    unknown = invoke("pipeline", "status", "zzzz")
    assert unknown.exit_code == 2 and 'unknown run "zzzz"' in unknown.output
    assert invoke("pipeline", "status", ids[1][: len(common) + 1]).exit_code == 0


def test_history_filters_and_errors(pipeline_file, workspace: Path) -> None:
    pipeline_file("h", "name: h\nvariables: {code: '0'}\nstages:\n  - {name: a, run: 'exit ${code}'}\n")
    invoke("pipeline", "run", "h")
    invoke("pipeline", "run", "h", "--var", "code=3")
    invoke("pipeline", "run", "h")
    runs = json.loads(invoke("pipeline", "history", "h", "--json").output)
    assert [r["status"] for r in runs] == ["succeeded", "failed", "succeeded"]
    failed = json.loads(invoke("pipeline", "history", "h", "--status", "failed", "--json").output)
    assert len(failed) == 1 and failed[0]["reason"] == "stage a failed"
    assert len(json.loads(invoke("pipeline", "history", "h", "--limit", "1", "--json").output)) == 1
    bad = invoke("pipeline", "history", "h", "--status", "broken")
    assert bad.exit_code == 2 and "is not a run status" in bad.output
    unknown = invoke("pipeline", "history", "nope")
    assert unknown.exit_code == 2 and 'unknown pipeline "nope"' in unknown.output


def test_gc_prunes_old_runs_with_their_logs_but_never_an_active_one(pipeline_file, workspace: Path) -> None:

    pipeline_file("g", "name: g\nstages:\n  - {name: a, run: 'echo hi'}\n")
    ids = [json.loads(invoke("pipeline", "run", "g", "--json").output)["id"] for _ in range(3)]
    with store_at(workspace) as store:
        version = store.version("g")
        assert version is not None
        store.create_run("01zzzzzzzzzzzzzz", "g", version.version, version.digest, {}, ["a"], time.time())
    preview = invoke("gc", "--keep-runs", "1", "--dry-run")
    assert preview.exit_code == 0 and "would delete 2 runs" in preview.output
    assert invoke("gc", "--keep-runs", "1").output.startswith("deleted 2 runs")
    left = {r for (r,) in rows(workspace / "orchestrate.db", "select id from runs")}
    assert left == {ids[2], "01zzzzzzzzzzzzzz"}  # the newest finished one, and the active one
    assert not (workspace / "logs" / ids[0]).exists() and (workspace / "logs" / ids[2]).exists()
    assert rows(
        workspace / "orchestrate.db", "select count(*) from stage_attempts where run_id = ?", ids[0]
    ) == [(0,)]
    assert rows(workspace / "orchestrate.db", "select count(*) from run_events where run_id = ?", ids[0]) == [
        (0,)
    ]
    assert invoke("gc", "--keep-days", "0").output.startswith("deleted 1 run")
    nothing = invoke("gc")
    assert nothing.exit_code == 2 and "--keep-days" in nothing.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["pipeline", "run", "missing.yaml"], "missing.yaml: no such file"),
        (["pipeline", "status", ""], "empty run id"),
        (["pipeline", "run", "x", "--var", "novalue"], "expected NAME=VALUE"),
        (["pipeline", "run", "x", "--max-parallel", "0"], "0"),
        (["pipeline", "logs", "zz", "--attempt", "1"], 'unknown run "zz"'),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(workspace: Path, args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
