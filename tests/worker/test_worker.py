"""``orchestrate worker`` as a real process (issue 11): schedules, the queue, wake-ups, SIGTERM."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli.helpers import rows
from tests.worker.helpers import WorkerProcess, orchestrate, wait_for

pytestmark = pytest.mark.slow

CRON = """
name: every5
triggers:
  - cron: "*/5 * * * *"
    tz: UTC
stages:
  - name: a
    run: "true"
"""

T0 = "2020-01-01T00:01:00+00:00"  # the schedule is first seen: nothing due (a past clock fires for real)
T1 = "2020-01-01T00:11:00+00:00"  # slots 00:05 and 00:10 missed: catchup false fires 00:10 once
SLOT_0010 = 1577837400.0


def status_of(db: Path, run_id: str) -> str:
    return str(rows(db, "SELECT status FROM runs WHERE id = ?", run_id)[0][0])


def test_a_cron_slot_fires_once_across_two_workers_and_a_restart(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    pipeline_file("every5", CRON)
    db = workspace / "orchestrate.db"
    first = orchestrate(workspace, "schedule", "tick", "--now", T0)
    assert first.returncode == 0, first.stderr
    assert "nothing due" in first.stdout
    # Two workers at once, both seeing the same due slot.
    workers += [WorkerProcess(workspace, "--grace", "1", ORCHESTRATE_NOW=T1) for _ in range(2)]
    runs = wait_for(lambda: rows(db, "SELECT id FROM runs WHERE triggered_by LIKE 'cron:%'"), what="a run")
    for w in workers:
        w.passes_after(2)
    assert len(rows(db, "SELECT id FROM runs WHERE triggered_by LIKE 'cron:%'")) == 1
    slots = rows(db, "SELECT slot_at, run_id, claimed_by FROM schedule_slots")
    assert [(s[0], s[1]) for s in slots] == [(SLOT_0010, runs[0][0])]
    assert slots[0][2].startswith("worker ")
    wait_for(lambda: status_of(db, runs[0][0]) == "succeeded", what="the scheduled run to finish")
    for w in workers:
        assert w.stop() == 0
    # A restart at the same moment, and a tick from cron: the slot stays fired once.
    workers.append(WorkerProcess(workspace, "--grace", "1", ORCHESTRATE_NOW=T1))
    workers[-1].passes_after(2)
    again = orchestrate(workspace, "schedule", "tick", "--now", T1)
    assert again.returncode == 0 and "nothing due" in again.stdout
    assert len(rows(db, "SELECT id FROM runs WHERE triggered_by LIKE 'cron:%'")) == 1
    assert "every5 [*/5 * * * * @UTC] slot" in "".join(w.output() for w in workers)


def test_wake_starts_a_queued_run_within_a_second(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    pipeline_file("q", "name: q\nstages:\n  - {name: a, run: 'true'}\n")
    # Slow polling both ways and no store watcher: only POST /wake can start the run quickly.
    (workspace / "orchestrate.yaml").write_text(
        "worker: {active_poll: 30s, idle_poll: 30s, watch_store: false}\n"
    )
    worker = WorkerProcess(workspace, "--grace", "1")
    workers.append(worker)
    worker.passes_after(1)
    time.sleep(0.3)  # the worker is asleep in its 30 s poll now
    queued = orchestrate(
        workspace, "pipeline", "run", "q", "--queue", ORCHESTRATE_WORKER_PORT=str(worker.port)
    )
    assert queued.returncode == 0, queued.stderr
    run_id = queued.stdout.strip()
    assert "queued" in queued.stderr and "no worker answered" not in queued.stderr
    db = workspace / "orchestrate.db"
    started = wait_for(
        lambda: rows(
            db, "SELECT created_at, started_at FROM runs WHERE id = ? AND started_at IS NOT NULL", run_id
        ),
        5.0,
        "the queued run to start",
    )
    created_at = started[0][0]
    wait_for(lambda: status_of(db, run_id) == "succeeded", what="the run to finish")
    launches = rows(db, "SELECT reason, launched_at FROM worker_launches WHERE run_id = ?", run_id)
    assert [reason for reason, _ in launches] == ["queued"]
    assert launches[0][1] - created_at < 1.0  # the worker launched it on the wake-up, not the 30 s poll


def test_an_edited_pipeline_file_is_reloaded_and_an_invalid_one_reported(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    path = pipeline_file("edit", "name: edit\nstages:\n  - {name: a, run: 'true'}\n")
    db = workspace / "orchestrate.db"
    worker = WorkerProcess(workspace, "--grace", "1")
    workers.append(worker)
    assert rows(db, "SELECT version FROM pipeline_versions WHERE pipeline = 'edit'") == [(1,)]
    path.write_text("name: edit\nstages:\n  - name: a\n    run: 'true'\n    timeout: 3 minutes\n")
    wait_for(lambda: "invalid definition" in worker.output(), what="the invalid file to be reported")
    assert (
        'pipelines.d/edit.yaml:5:14: stages[0].timeout: "3 minutes" is not a duration (use 3m); keeping version 1'
        in worker.output()
    )
    path.write_text("name: edit\nstages:\n  - {name: a, run: 'true'}\n  - {name: b, run: 'true'}\n")
    wait_for(
        lambda: rows(db, "SELECT MAX(version) FROM pipeline_versions WHERE pipeline = 'edit'") == [(2,)],
        what="version 2 to be registered by the worker alone",
    )
    # the worker logs the reload just after registering it
    wait_for(
        lambda: "reloaded pipelines.d/edit.yaml: edit version 2" in worker.output(), what="the reload logged"
    )


SLOW_ONCE = """
name: slow
stages:
  - name: work
    run: "test -f done.marker || { touch done.marker; sleep 30; }"
  - name: after
    run: "true"
"""


def test_sigterm_lets_a_run_finish_within_the_grace_period(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    pipeline_file("short", "name: short\nstages:\n  - {name: a, run: 'sleep 2'}\n")
    worker = WorkerProcess(workspace, "--grace", "20")
    workers.append(worker)
    run_id = orchestrate(workspace, "pipeline", "run", "short", "--queue").stdout.strip()
    db = workspace / "orchestrate.db"
    wait_for(lambda: status_of(db, run_id) == "running", what="the run to start")
    assert worker.stop() == 0
    assert status_of(db, run_id) == "succeeded"  # it finished before the worker exited
    out = worker.output()
    assert "SIGTERM: taking no more work" in out and "get 20s to finish" in out
    assert "worker stopped" in out


def test_sigterm_past_the_grace_stops_a_run_and_the_next_worker_resumes_it(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    pipeline_file("slow", SLOW_ONCE)
    worker = WorkerProcess(workspace, "--grace", "0.5")
    workers.append(worker)
    run_id = orchestrate(workspace, "pipeline", "run", "slow", "--queue").stdout.strip()
    db = workspace / "orchestrate.db"
    wait_for(lambda: (workspace / "done.marker").exists(), what="the stage to start")
    assert worker.stop() == 0
    assert rows(db, "SELECT status, reason FROM runs WHERE id = ?", run_id) == [
        ("cancelled", "cancelled by SIGTERM")
    ]
    assert f"stopped run {run_id}; the next worker resumes it" in worker.output()
    assert rows(
        db, "SELECT COUNT(*) FROM worker_launches WHERE run_id = ? AND interrupted_at IS NOT NULL", run_id
    ) == [(1,)]
    checkpoint = json.loads((workspace / "checkpoints" / run_id / "checkpoint.json").read_text())
    assert checkpoint["run"]["status"] == "cancelled"  # checkpointed: resumable anywhere
    again = WorkerProcess(workspace, "--grace", "1")
    workers.append(again)
    wait_for(lambda: status_of(db, run_id) == "succeeded", 20.0, "the resumed run to finish")
    assert f"started run {run_id} (interrupted" in again.output()
    attempts = rows(
        db, "SELECT attempt, status FROM stage_attempts WHERE run_id = ? AND stage = 'work'", run_id
    )
    assert attempts == [(1, "cancelled"), (2, "succeeded")]


def test_health_and_metrics(pipeline_file, workspace: Path, workers: list[WorkerProcess]) -> None:
    pipeline_file("m", "name: m\nstages:\n  - {name: a, run: 'true'}\n")
    assert orchestrate(workspace, "pipeline", "run", "m").returncode == 0
    worker = WorkerProcess(workspace, "--grace", "1", "--max-runs", "3")
    workers.append(worker)
    health = worker.health()
    assert health["status"] == "ok" and health["active_runs"] == 0 and health["max_runs"] == 3
    assert health["queue_length"] == 0 and health["last_tick"] and health["version"]
    code, content_type, text = worker.get("/metrics")
    assert code == 200 and content_type.startswith("text/plain")
    assert 'orchestrate_runs{pipeline="m",status="succeeded"} 1.0' in text
    assert 'orchestrate_stage_duration_seconds_count{pipeline="m"} 1.0' in text
    assert 'orchestrate_stage_duration_seconds_bucket{le="+Inf",pipeline="m"} 1.0' in text
    for name in (
        "orchestrate_queue_length 0.0",
        "orchestrate_approvals_pending 0.0",
        "orchestrate_worker_active_runs 0.0",
        "orchestrate_worker_loop_lag_seconds",
        "orchestrate_worker_pass_duration_seconds",
    ):
        assert name in text
    assert worker.wake() == 202


APPROVAL = """
name: gated
stages:
  - name: build
    run: "true"
  - name: ship-it
    requires_approval: true
    approvers: [alice]
  - name: deploy
    run: "echo deployed > deployed.txt"
"""


def test_a_decided_gate_of_a_run_whose_process_left_is_continued(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    pipeline_file("gated", APPROVAL)
    waiting = orchestrate(workspace, "pipeline", "run", "gated", "--no-wait", "--json")
    assert waiting.returncode == 3, waiting.stderr
    run_id = json.loads(waiting.stdout)["id"]
    worker = WorkerProcess(workspace, "--grace", "1")
    workers.append(worker)
    request = rows(workspace / "orchestrate.db", "SELECT id FROM approval_requests WHERE run_id = ?", run_id)[
        0
    ][0]
    decided = orchestrate(
        workspace, "approval", "approve", request, "--as", "alice", ORCHESTRATE_WORKER_PORT=str(worker.port)
    )
    assert decided.returncode == 0, decided.stderr
    wait_for(lambda: status_of(workspace / "orchestrate.db", run_id) == "succeeded", 15.0, "the run to go on")
    assert (workspace / "deployed.txt").read_text() == "deployed\n"
    assert f"started run {run_id} (approved" in worker.output()


def test_a_second_worker_on_the_same_port_is_a_clear_error(
    workspace: Path, workers: list[WorkerProcess]
) -> None:
    worker = WorkerProcess(workspace, "--grace", "1")
    workers.append(worker)
    clash = orchestrate(workspace, "worker", "--port", str(worker.port))
    assert clash.returncode == 2
    assert f"worker: cannot listen on 127.0.0.1:{worker.port}" in clash.stderr
    assert "Traceback" not in clash.stderr


TIMED = """
name: timed
stages:
  - name: ship-it
    requires_approval: true
    approvers: [alice]
    approval: {timeout: 2s, on_timeout: approve}
  - name: deploy
    run: "echo deployed > deployed.txt"
"""


def test_an_idle_worker_decides_an_approval_timeout_on_time(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    pipeline_file("timed", TIMED)
    (workspace / "orchestrate.yaml").write_text(
        "worker: {active_poll: 30s, idle_poll: 30s, watch_store: false}\n"
    )
    worker = WorkerProcess(workspace, "--grace", "1")
    workers.append(worker)
    waiting = orchestrate(
        workspace, "pipeline", "run", "timed", "--no-wait", "--json", ORCHESTRATE_WORKER_PORT="1"
    )
    assert waiting.returncode == 3, waiting.stderr
    run_id = json.loads(waiting.stdout)["id"]
    worker.wake()  # the worker learns of the deadline (no store watcher here), then sleeps until it
    db = workspace / "orchestrate.db"
    wait_for(
        lambda: status_of(db, run_id) == "succeeded", 15.0, "the timed-out approval to let the run go on"
    )
    ((status, deadline, decided_at),) = rows(
        db, "SELECT status, deadline, decided_at FROM approval_requests WHERE run_id = ?", run_id
    )
    assert status in ("approved", "timed_out")
    assert 0 <= decided_at - deadline < 1.0  # not the 30 s idle poll
    assert (workspace / "deployed.txt").read_text() == "deployed\n"


def test_worker_once_does_one_pass_and_exits(pipeline_file, workspace: Path) -> None:
    pipeline_file("q", "name: q\nstages:\n  - {name: a, run: 'true'}\n")
    run_id = orchestrate(workspace, "pipeline", "run", "q", "--queue").stdout.strip()
    once = orchestrate(workspace, "worker", "--once")
    assert once.returncode == 0, once.stderr
    assert f"started run {run_id} (queued" in once.stdout and "one pass done: started 1 run(s)" in once.stdout
    db = workspace / "orchestrate.db"
    wait_for(lambda: status_of(db, run_id) == "succeeded", 15.0, "the run --once started")


def test_the_worker_resumes_an_orphaned_run(
    pipeline_file, workspace: Path, workers: list[WorkerProcess]
) -> None:
    import os
    import signal

    pipeline_file("slow", SLOW_ONCE)
    detached = orchestrate(workspace, "pipeline", "run", "slow", "--detach", "--json")
    assert detached.returncode == 0, detached.stderr
    run_id = json.loads(detached.stdout)["id"]
    db = workspace / "orchestrate.db"
    wait_for(lambda: (workspace / "done.marker").exists(), what="the stage to start")
    (pid,) = wait_for(lambda: rows(db, "SELECT pid FROM runs WHERE id = ? AND pid IS NOT NULL", run_id))[0]
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the run's process and its stage die: no record of it
    worker = WorkerProcess(workspace, "--grace", "1")
    workers.append(worker)
    wait_for(lambda: status_of(db, run_id) == "succeeded", 30.0, "the orphaned run to be resumed")
    assert f"started run {run_id} (orphaned" in worker.output()


@pytest.mark.parametrize(
    ("args", "yaml", "message"),
    [
        (("--port", "99999"), "", "99999"),
        ((), "worker: {wake: 'no'}\n", "orchestrate.yaml: worker.wake: 'no' is not true or false"),
        ((), "worker: {active_poll: 0s}\n", "orchestrate.yaml: worker.active_poll: '0s' is too short"),
        (
            (),
            "worker: {active_poll: 1m, idle_poll: 30s}\n",
            "orchestrate.yaml: worker.active_poll (60s) is longer than worker.idle_poll (30s)",
        ),
        ((), "worker: {port: 70000}\n", "orchestrate.yaml: worker.port: must be at most 65535"),
    ],
)
def test_bad_worker_settings_are_one_line_errors(workspace: Path, args, yaml, message) -> None:  # type: ignore[no-untyped-def]
    (workspace / "orchestrate.yaml").write_text(yaml)
    result = orchestrate(workspace, "worker", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_worker_refuses_a_clock_in_the_future(workspace: Path) -> None:
    result = orchestrate(workspace, "worker", "--once", ORCHESTRATE_NOW="2999-01-01T00:00:00+00:00")
    assert result.returncode == 2
    assert "ORCHESTRATE_NOW: a worker fires only slots that have come" in result.stderr
