"""Stale runs and overdue stages (issue 9), and reported pipelines shown as runs of kind `reported`."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import invoke
from tests.cli.test_run_control import orchestrate, wait_for

NAP = """
name: nap
variables:
  t: "0"
stages:
  - name: prep
    run: "true"
  - name: nap
    depends_on: [prep]
    run: sleep ${t}
"""


def _json(*args: str) -> object:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _set_config(workspace: Path, text: str) -> None:
    config = workspace / "orchestrate.yaml"
    config.write_text(config.read_text() + "\n" + text + "\n")


def _detach_and_wait_running(workspace: Path, *args: str) -> str:
    started = orchestrate(workspace, "pipeline", "run", "nap", "--detach", *args)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()

    def napping() -> bool:
        record = _json("pipeline", "status", run_id)
        return any(s["name"] == "nap" and s["status"] == "running" for s in record["stages"])  # type: ignore[index]

    wait_for(napping)
    return run_id


def _stop(workspace: Path, run_id: str) -> None:
    result = orchestrate(workspace, "pipeline", "cancel", run_id)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_an_executed_run_without_news_is_stale_in_status_list_and_history(
    pipeline_file, workspace: Path
) -> None:
    _set_config(workspace, "stale_after: 1s")
    pipeline_file("nap", NAP)
    run_id = _detach_and_wait_running(workspace, "--var", "t=60")
    try:
        time.sleep(1.3)  # nothing happens to the run: its stage sleeps
        record = _json("pipeline", "status", run_id)
        assert record["kind"] == "executed"
        assert record["stale"] is True
        assert record["stale_reason"].startswith("no update for ")
        shown = invoke("pipeline", "status", run_id)
        assert "⚠ stale: no update for" in shown.stdout
        listed = _json("pipeline", "list", "--stale")
        assert [(p["kind"], p["name"]) for p in listed] == [("executed", "nap")]  # type: ignore[index]
        [active] = listed[0]["active_runs"]  # type: ignore[index]
        assert (active["id"], active["status"], active["stale"]) == (run_id, "running", True)
        assert active["stale_reason"].startswith("no update for ")
        table = invoke("pipeline", "list", "--stale").stdout
        assert f"nap run {run_id} is stale" in table
        history = _json("pipeline", "history", "nap")
        assert history[0]["stale"] is True  # type: ignore[index]
        assert "stale" in invoke("pipeline", "history", "nap").stdout
    finally:
        _stop(workspace, run_id)
    # finished runs are never stale
    assert _json("pipeline", "status", run_id)["stale"] is False  # type: ignore[index]
    assert _json("pipeline", "list", "--stale") == []
    assert "no stale runs" in invoke("pipeline", "list", "--stale").stdout


def test_a_fresh_running_run_is_not_stale(pipeline_file, workspace: Path) -> None:
    pipeline_file("nap", NAP)
    run_id = _detach_and_wait_running(workspace, "--var", "t=60")
    try:
        record = _json("pipeline", "status", run_id)
        assert (record["stale"], record["overdue"]) == (False, {})  # type: ignore[index]
        assert _json("pipeline", "list", "--stale") == []
        listed = _json("pipeline", "list")
        assert listed[0]["active_runs"][0]["stale"] is False  # type: ignore[index]
    finally:
        _stop(workspace, run_id)


@pytest.mark.slow
def test_a_stage_far_beyond_its_own_p95_is_overdue_with_the_reason(pipeline_file, workspace: Path) -> None:
    pipeline_file("nap", NAP)
    for _ in range(9):
        assert invoke("pipeline", "run", "nap").exit_code == 0
    # nine past runs: too little history to judge, so nothing is flagged
    run_id = _detach_and_wait_running(workspace, "--var", "t=60")
    try:
        time.sleep(0.5)
        assert _json("pipeline", "status", run_id)["overdue"] == {}  # type: ignore[index]
    finally:
        _stop(workspace, run_id)
    assert invoke("pipeline", "run", "nap").exit_code == 0  # the tenth
    run_id = _detach_and_wait_running(workspace, "--var", "t=60")
    try:
        time.sleep(0.5)  # far more than 3 × the P95 of `sleep 0`
        record = _json("pipeline", "status", run_id)
        assert list(record["overdue"]) == ["nap"]  # type: ignore[call-overload]
        assert "more than 3 × its P95 of" in record["overdue"]["nap"]  # type: ignore[index]
        assert "over 10 past runs" in record["overdue"]["nap"]  # type: ignore[index]
        assert "⚠ overdue: nap is running" in invoke("pipeline", "status", run_id).stdout
        # a larger factor in orchestrate.yaml: not overdue any more
        _set_config(workspace, "overdue: {factor: 100000}")
        assert _json("pipeline", "status", run_id)["overdue"] == {}  # type: ignore[index]
    finally:
        _stop(workspace, run_id)


def test_bad_overdue_settings_are_named(pipeline_file, workspace: Path) -> None:
    pipeline_file("nap", NAP)
    _set_config(workspace, "overdue: {factor: 0.5}")
    result = invoke("pipeline", "list")
    assert result.exit_code != 0
    assert "orchestrate.yaml: overdue.factor: must be a number above 1, got 0.5" in result.output
    assert "Traceback" not in result.output


def _report(*args: str) -> str:
    result = invoke("report", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_reported_pipelines_are_runs_of_kind_reported(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = _report("pipeline", "create", "--type", "ticket_work", "--title", "Fix login")
    monkeypatch.setenv("ORCHESTRATE_REPORT_PIPELINE", pid)
    job = _report("job", "start", "research", "read the code")
    log = workspace / "notes.md"
    log.write_text("the bug is in session.py\n")
    _report("log", job, "--file", str(log))
    _report("job", "update", job, "--status", "success", "--summary", "found it")
    other = _report("job", "start", "coding", "fix it")

    listed = _json("pipeline", "list")
    reported = [p for p in listed if p["kind"] == "reported"]  # type: ignore[index, union-attr]
    assert [(p["id"], p["name"], p["status"], p["stale"]) for p in reported] == [
        (pid, "ticket_work", "running", False)
    ]
    table = invoke("pipeline", "list").stdout
    assert "agent pipelines (reported, unfinished)" in table and "Fix login" in table

    status = _json("pipeline", "status", pid)
    assert status["kind"] == "reported"  # type: ignore[index]
    assert [s["name"] for s in status["steps"]] == ["research", "coding", "wrap-up"]  # type: ignore[index]
    shown = invoke("pipeline", "status", pid[:10]).stdout
    assert "read the code" in shown and "found it" in shown

    history = _json("pipeline", "history", "ticket_work")
    assert [(h["kind"], h["id"]) for h in history] == [("reported", pid)]  # type: ignore[index]
    assert "Fix login" in invoke("pipeline", "history", "ticket_work").stdout

    logs = invoke("pipeline", "logs", pid)
    assert logs.exit_code == 0
    assert f"==> research/read the code (succeeded) {workspace / 'logs' / pid / 'research' / job}.md <==" in (
        logs.stdout
    )
    assert "the bug is in session.py" in logs.stdout
    assert "==> coding/fix it (running) no log yet <==" in logs.stdout
    listed_logs = invoke("pipeline", "logs", pid, "--list").stdout.splitlines()
    assert listed_logs == [
        f"research\tread the code\tsucceeded\t{workspace / 'logs' / pid / 'research' / job}.md"
    ]
    only_coding = invoke("pipeline", "logs", pid, "coding").stdout
    assert "session.py" not in only_coding and "coding/fix it" in only_coding
    missing = invoke("pipeline", "logs", pid, "deploy")
    assert missing.exit_code != 0
    assert "has no step 'deploy' (steps: research, coding, wrap-up)" in missing.output

    _report("job", "update", other, "--status", "success")
    _report("finish")
    assert [p for p in _json("pipeline", "list") if p["kind"] == "reported"] == []  # type: ignore[index]
    assert _json("pipeline", "status", pid)["status"] == "succeeded"  # type: ignore[index]


def test_a_reported_pipeline_without_news_is_stale(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_config(workspace, "stale_after: 1s")
    pid = _report("pipeline", "create", "--type", "custom", "--title", "long agent job")
    time.sleep(1.2)
    listed = _json("pipeline", "list", "--stale")
    assert [(p["kind"], p["id"], p["stale"]) for p in listed] == [("reported", pid, True)]  # type: ignore[index]
    assert " stale" in invoke("pipeline", "status", pid).stdout


@pytest.mark.slow
@pytest.mark.parametrize("command", [["pipeline", "list"], ["pipeline", "status", "PID"]])
def test_watch_redraws_in_a_terminal_with_durations_ticking(workspace: Path, command: list[str]) -> None:
    pid = _report("pipeline", "create", "--type", "custom", "--title", "agent at work")
    argv = [pid if a == "PID" else a for a in command]
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", *argv, "--watch", "--interval", "0.5"],
        cwd=workspace,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=os.environ | {"COLUMNS": "150", "TERM": "xterm"},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(set(re.findall(rb"(\d+\.\d+)s", seen))) < 3:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            seen += os.read(master, 65536)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    os.close(master)
    assert proc.returncode == 0
    assert b"agent at work" in seen
    durations = {float(d) for d in re.findall(rb"(\d+\.\d+)s", seen)}
    assert len(durations) >= 3, seen  # the open pipeline's duration grew between redraws
