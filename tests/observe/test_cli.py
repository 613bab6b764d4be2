"""``orchestrate report …`` as an agent calls it: separate processes, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import rows


def cli(
    workspace: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        cwd=workspace,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def ok(workspace: Path, *args: str, stdin: str | None = None, **env: str) -> str:
    result = cli(workspace, *args, stdin=stdin, **env)
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout.strip()


def test_a_ticket_work_session(workspace: Path) -> None:
    pid = ok(
        workspace,
        "report",
        "pipeline",
        "create",
        "--type",
        "ticket_work",
        "--title",
        "PROJ-42",
        "--sprint",
        "12",
    )
    research = ok(workspace, "report", "job", "start", "research", "Read the code", "--pipeline", pid)
    # later calls find the pipeline through the environment
    env = {"ORCHESTRATE_REPORT_PIPELINE": pid}
    notes = workspace / "notes.md"
    notes.write_text("Found it in `parse_header`.\n")
    path = ok(workspace, "report", "log", research, "--file", str(notes), "--title", "findings")
    assert ok(workspace, "report", "log", research, "--file", "-", stdin="- one\n- two\n") == path
    assert path == str(workspace / "logs" / pid / "research" / f"{research}.md")
    said = ok(
        workspace, "report", "job", "update", research, "--status", "success", "--summary", "understood"
    )
    assert said == f"{research} succeeded; step research succeeded; pipeline {pid} running"
    coding = ok(workspace, "report", "job", "start", "coding", "Fix the parser", **env)
    failed = json.loads(ok(workspace, "report", "job", "update", coding, "--status", "failure", "--json"))
    assert (failed["status"], failed["step_status"], failed["pipeline_status"]) == (
        "failed",
        "failed",
        "failed",
    )
    assert ok(workspace, "report", "finish", **env) == f"{pid} failed"  # aggregated from the steps

    tree = json.loads(ok(workspace, "report", "show", pid[:10], "--json"))
    assert [(s["name"], s["status"]) for s in tree["steps"]] == [
        ("research", "succeeded"),
        ("coding", "failed"),
        ("wrap-up", "pending"),
    ]
    job = tree["steps"][0]["jobs"][0]
    assert job["summary"] == "understood" and job["log_path"] == path and job["duration_seconds"] >= 0
    assert tree["finished_at"] and tree["stale"] is False and tree["kind"] == "reported"
    log = Path(path).read_text()
    assert log.count("\n## ") == 2 and "findings\n\nFound it in `parse_header`." in log and "- two\n" in log
    shown = ok(workspace, "report", "job", "show", research)
    assert "Read the code" in shown and "Found it in `parse_header`." in shown
    assert "PROJ-42" in ok(workspace, "report", "show", pid) and "✗ coding" in ok(
        workspace, "report", "show", pid
    )
    assert f"[logs]({pid}/)" in (workspace / "logs" / "activity.md").read_text()
    assert rows(workspace / "orchestrate.db", "select status from reported_pipelines") == [("failed",)]

    listed = json.loads(ok(workspace, "report", "list", "--status", "failure", "--json"))
    assert [p["id"] for p in listed["pipelines"]] == [pid] and listed["total"] == 1
    assert pid in ok(workspace, "report", "list")
    cleaned = json.loads(ok(workspace, "report", "clean", "--sprint", "12", "--json"))
    assert cleaned["cleaned"] == [pid] and cleaned["files"] == 1 and not Path(path).exists()
    assert rows(
        workspace / "orchestrate.db", "select logs_cleaned_at is not null from reported_pipelines"
    ) == [(1,)]


def test_stale_is_decided_at_read_time_from_orchestrate_yaml(workspace: Path) -> None:
    (workspace / "orchestrate.yaml").write_text("stale_after: 1ms\n")
    pid = ok(workspace, "report", "pipeline", "create", "--title", "stuck")
    listed = json.loads(ok(workspace, "report", "list", "--stale", "--json"))
    assert [(p["id"], p["stale"]) for p in listed["pipelines"]] == [(pid, True)]
    assert "running stale" in ok(workspace, "report", "list")
    (workspace / "orchestrate.yaml").write_text("stale_after: 1 hour\n")
    bad = cli(workspace, "report", "list")
    assert bad.returncode == 2 and "stale_after" in bad.stderr and "use 1h" in bad.stderr


def warning_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("orchestrate report: warning: "), result.stderr
    return lines[0]


def test_reporting_never_fails_the_agent(workspace: Path, tmp_path: Path) -> None:
    # unknown ids, bad values, no workspace: one warning line, exit 0
    assert 'unknown reported job "nope"' in warning_of(
        cli(workspace, "report", "job", "update", "nope", "--status", "success")
    )
    assert 'unknown status "done"' in warning_of(
        cli(workspace, "report", "job", "update", "x", "--status", "done")
    )
    assert "no unfinished reported pipeline" in warning_of(cli(workspace, "report", "finish"))
    assert "no workspace here" in warning_of(cli(tmp_path, "report", "pipeline", "create", "--title", "t"))
    assert "needs a title" in warning_of(cli(workspace, "report", "pipeline", "create"))
    # --strict: the usual error and exit code
    strict = cli(workspace, "report", "job", "update", "nope", "--status", "success", "--strict")
    assert strict.returncode == 2 and 'unknown reported job "nope"' in strict.stderr


@pytest.mark.sqlite_only
def test_an_unwritable_workspace_is_a_warning(workspace: Path) -> None:
    # The store file cannot be opened (a folder stands where it goes): even root cannot write it.
    (workspace / "orchestrate.db").mkdir()
    line = warning_of(cli(workspace, "report", "pipeline", "create", "--title", "t"))
    assert "orchestrate.db" in line or "database" in line
    strict = cli(workspace, "report", "pipeline", "create", "--title", "t", "--strict")
    assert strict.returncode == 2 and "could not record the report" in strict.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_workspace_is_a_warning(workspace: Path) -> None:
    pid = ok(workspace, "report", "pipeline", "create", "--title", "t")
    job = ok(workspace, "report", "job", "start", "a", "b", "--pipeline", pid)
    os.chmod(workspace, 0o555)
    try:
        assert "Permission" in warning_of(cli(workspace, "report", "log", job, "--text", "x"))
    finally:
        os.chmod(workspace, 0o755)


def test_an_agent_in_a_stage_reports_into_that_stage(workspace: Path, pipeline_file) -> None:  # type: ignore[no-untyped-def]
    orchestrate = f"{sys.executable} -m orchestrate"
    pipeline_file(
        "agents",
        f"""
        name: agents
        stages:
          - name: implement
            run: |
              J=$({orchestrate} report job start coding "edit files")
              {orchestrate} report log "$J" --text "edited"
              {orchestrate} report job update "$J" --status success
              {orchestrate} report finish
        """,
    )
    run = cli(workspace, "pipeline", "run", "agents", "--plain")
    assert run.returncode == 0, run.stdout + run.stderr
    [(run_id,)] = rows(workspace / "orchestrate.db", "select id from runs")
    [listed] = json.loads(ok(workspace, "report", "list", "--json"))["pipelines"]
    assert (listed["run_id"], listed["stage"], listed["status"]) == (run_id, "implement", "succeeded")
    assert listed["title"] == f"agents implement (run {run_id})" and listed["job_count"] == 1
