"""Issue 13 (4): ``executor: dask`` stages on a real Dask cluster: a scheduler and two workers on loopback.

The cluster is started once for the module (``dask scheduler`` and two ``dask worker``
subprocesses, free ports); each test drives the CLI as a user does and checks what the
user sees, the stage logs, and the store.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows

pytest.importorskip("distributed")

FAKE = str(Path(__file__).parents[1] / "fixtures" / "fake_agent.py")
DASK = str(Path(sys.executable).with_name("dask"))
HEADER = re.compile(r"--- orchestrate: dask worker (\S+) \((\S+)\) on (\S+), pid (\d+) ---")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tcp://127.0.0.1:PORT of a scheduler with two workers, w1 and w2 (two threads each)."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    DASK,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    address.rsplit(":", 1)[1],
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(logs / "scheduler.log", "wb"),  # noqa: SIM115 (closed with the process)
            )
        )
        for name in ("w1", "w2"):
            procs.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        address,
                        "--name",
                        name,
                        "--nthreads",
                        "2",
                        "--no-nanny",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=open(logs / f"{name}.log", "wb"),  # noqa: SIM115
                )
            )
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture
def dask_ws(workspace: Path, cluster: str) -> Path:
    """A workspace whose orchestrate.yaml points at the cluster (and has a Dask agent)."""
    config = {
        "defaults": {"max_parallel": 4},
        "dask": {"scheduler": cluster},
        "agents": {
            "remote": {
                "command": [sys.executable, FAKE, "claude-json", "{task}"],
                "usage": "claude-json",
                "executor": "dask",
            },
        },
    }
    (workspace / "orchestrate.yaml").write_text(json.dumps(config))
    return workspace


def headers(log: str) -> list[tuple[str, str, str, int]]:
    return [(w, a, h, int(p)) for w, a, h, p in HEADER.findall(log)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_id_of(workspace: Path) -> str:
    [(run_id,)] = rows(workspace / "orchestrate.db", "select id from runs")
    return str(run_id)


def log_of(workspace: Path, run_id: str, stage: str) -> str:
    return (workspace / "logs" / run_id / f"{stage}.log").read_text()


def wait_for(predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


SPREAD = """
name: spread
stages:
{stages}
  - name: report
    executor: dask
    depends_on: [{names}]
    run: echo "got ${{stages.s1.outputs.where}}"
"""


@pytest.mark.slow
def test_output_outputs_and_both_workers(pipeline_file, dask_ws: Path) -> None:
    names = [f"s{i}" for i in range(1, 5)]
    stages = "".join(
        f"  - name: {n}\n    executor: dask\n    depends_on: []\n"
        f'    run: echo "hello from {n}"; echo "where=$(hostname)" >> "$ORCHESTRATE_OUTPUT"; sleep 1\n'
        for n in names
    )
    pipeline_file("spread", SPREAD.format(stages=stages, names=", ".join(names)))
    result = invoke("pipeline", "run", "spread", "--plain")
    assert result.exit_code == 0, result.output
    assert "run " in result.output and "succeeded" in result.output
    run_id = run_id_of(dask_ws)
    workers = set()
    for name in names:
        log = log_of(dask_ws, run_id, name)
        assert f"hello from {name}\n" in log  # the remote command's output, in the local log
        [(worker, address, host, _pid)] = headers(log)
        assert address.startswith("tcp://127.0.0.1:") and host == socket.gethostname()
        workers.add(worker)
    assert workers == {"w1", "w2"}  # four one-second stages on two workers of two threads each
    stored = dict(rows(dask_ws / "orchestrate.db", "select name, outputs from stages"))
    assert json.loads(stored["s1"]) == {"where": socket.gethostname()}
    assert f"got {socket.gethostname()}" in log_of(dask_ws, run_id, "report")


@pytest.mark.slow
def test_agent_on_dask_reports_usage_and_masks_secrets(
    pipeline_file, dask_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "tok-9f8e7d")
    pipeline_file(
        "agent",
        """
        name: agent
        secrets: [API_TOKEN]
        stages:
          - name: think
            agent: remote
            task: plan the work
          - name: leak
            executor: dask
            run: echo "token is $API_TOKEN"; echo "said=$API_TOKEN" >> "$ORCHESTRATE_OUTPUT"
        """,
    )
    result = invoke("pipeline", "run", "agent", "--plain")
    assert result.exit_code == 0, result.output
    run_id = run_id_of(dask_ws)
    think = log_of(dask_ws, run_id, "think")
    assert headers(think) and "working on: plan the work" in think
    leak = log_of(dask_ws, run_id, "leak")
    assert "token is ***\n" in leak and "tok-9f8e7d" not in leak
    stored = {
        n: json.loads(o) for n, o in rows(dask_ws / "orchestrate.db", "select name, outputs from stages")
    }
    assert stored["think"]["cost_usd"] == "0.0731" and stored["think"]["output_tokens"] == "250"
    assert stored["leak"] == {"said": "***"}
    [(executor, cost, tokens_in)] = rows(
        dask_ws / "orchestrate.db",
        "select executor, cost_usd, input_tokens from task_metrics where stage = 'think'",
    )
    assert (executor, cost, tokens_in) == ("dask", 0.0731, 1500)


@pytest.mark.slow
def test_failing_command_fails_the_stage_with_its_exit_code(pipeline_file, dask_ws: Path) -> None:
    pipeline_file(
        "fails",
        """
        name: fails
        stages:
          - name: bad
            executor: dask
            run: echo about to fail; exit 3
            on_failure: continue
          - name: missing
            executor: dask
            depends_on: []
            run: no-such-command-xyz --flag
            on_failure: continue
        """,
    )
    result = invoke("pipeline", "run", "fails", "--plain")
    assert result.exit_code == 1, result.output
    assert "bad failed" in result.output and "exit code 3" in result.output
    attempts = {
        s: (code, error)
        for s, code, error in rows(
            dask_ws / "orchestrate.db", "select stage, exit_code, error from stage_attempts"
        )
    }
    assert attempts == {"bad": (3, "exit code 3"), "missing": (127, "command not found: no-such-command-xyz")}
    run_id = run_id_of(dask_ws)
    assert "about to fail" in log_of(dask_ws, run_id, "bad")
    assert "orchestrate: command not found: no-such-command-xyz" in log_of(dask_ws, run_id, "missing")


@pytest.mark.slow
def test_stage_timeout_kills_the_remote_process(pipeline_file, dask_ws: Path) -> None:
    pipeline_file(
        "slow",
        """
        name: slow
        stages:
          - name: nap
            executor: dask
            timeout: 2s
            run: echo napping; exec sleep 60
        """,
    )
    started = time.monotonic()
    result = invoke("pipeline", "run", "slow", "--plain")
    assert result.exit_code == 1, result.output
    assert "nap failed" in result.output and "timed out after 2s" in result.output
    assert time.monotonic() - started < 30
    log = log_of(dask_ws, run_id_of(dask_ws), "nap")
    [(_worker, _address, _host, pid)] = headers(log)
    assert "napping" in log
    assert not alive(pid)  # the remote sleep is gone, not left running on the worker
    [(status, error)] = rows(dask_ws / "orchestrate.db", "select status, error from stage_attempts")
    assert (status, error) == ("failed", "timed out after 2s")


@pytest.mark.slow
def test_pipeline_cancel_stops_the_remote_process(pipeline_file, dask_ws: Path) -> None:
    pipeline_file(
        "long",
        """
        name: long
        stages:
          - name: work
            executor: dask
            run: echo working; exec sleep 60
          - name: after
            run: echo after
        """,
    )
    started = subprocess.run(
        [sys.executable, "-m", "orchestrate", "pipeline", "run", "long", "--detach"],
        cwd=dask_ws,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    log = dask_ws / "logs" / run_id / "work.log"
    wait_for(lambda: log.exists() and "working" in log.read_text())
    [(_worker, _address, _host, pid)] = headers(log.read_text())
    assert alive(pid)
    result = invoke("pipeline", "cancel", run_id)
    assert result.exit_code == 0, result.output
    assert f"run {run_id} cancelled" in result.output
    wait_for(lambda: not alive(pid), timeout=15)
    stages = dict(rows(dask_ws / "orchestrate.db", "select name, status from stages"))
    assert stages == {"work": "cancelled", "after": "pending"}


def test_no_scheduler_configured_is_refused_before_the_run(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "nowhere",
        """
        name: nowhere
        stages:
          - name: first
            run: echo local
          - name: far
            executor: dask
            run: echo remote
        """,
    )
    result = invoke("pipeline", "run", "nowhere", "--plain")
    assert result.exit_code == 2, result.output
    assert 'stage "far" runs on Dask (executor: dask) but no Dask scheduler is configured' in result.output
    assert "ORCHESTRATE_DASK_SCHEDULER=tcp://HOST:8786" in result.output
    assert "Traceback" not in result.output
    assert rows(workspace / "orchestrate.db", "select id from runs") == []


def test_a_python_stage_cannot_run_on_dask(pipeline_file, workspace: Path) -> None:
    (workspace / "orchestrate.yaml").write_text("dask: {scheduler: tcp://127.0.0.1:1}\n")
    (workspace / "steps.py").write_text("def go(ctx):\n    return {}\n")
    pipeline_file(
        "py",
        """
        name: py
        stages:
          - name: go
            executor: dask
            python: steps:go
        """,
    )
    result = invoke("pipeline", "run", "py", "--plain")
    assert result.exit_code == 2, result.output
    assert 'stages[0].executor: stage "go" is a python stage' in result.output


def test_an_unknown_executor_is_a_definition_error(pipeline_file, workspace: Path) -> None:
    path = pipeline_file(
        "odd",
        """
        name: odd
        stages:
          - name: go
            executor: kubernetes
            run: echo hi
        """,
    )
    result = invoke("pipeline", "validate", str(path))
    assert result.exit_code == 2, result.output
    assert "executor" in result.output and "kubernetes" in result.output


def test_dask_scheduler_in_orchestrate_yaml_must_be_an_address(pipeline_file, workspace: Path) -> None:
    (workspace / "orchestrate.yaml").write_text("dask: {scheduler: 8786}\n")
    pipeline_file("one", "name: one\nstages:\n  - name: a\n    run: echo a\n")
    result = invoke("pipeline", "run", "one", "--plain")
    assert result.exit_code == 2, result.output
    assert "dask.scheduler: expected the scheduler's address" in result.output


@pytest.mark.slow
def test_an_unreachable_scheduler_fails_the_dask_stages_not_the_local_ones(
    pipeline_file, workspace: Path
) -> None:
    (workspace / "orchestrate.yaml").write_text(f"dask: {{scheduler: 'tcp://127.0.0.1:{_free_port()}'}}\n")
    pipeline_file(
        "cut",
        """
        name: cut
        stages:
          - name: here
            run: echo local
          - name: there
            executor: dask
            depends_on: []
            run: echo remote
        """,
    )
    result = invoke("pipeline", "run", "cut", "--plain")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    stages = dict(rows(workspace / "orchestrate.db", "select name, status from stages"))
    assert stages == {"here": "succeeded", "there": "failed"}
    [(error,)] = rows(workspace / "orchestrate.db", "select error from stage_attempts where stage = 'there'")
    assert error.startswith("cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert error in (workspace / "logs" / run_id_of(workspace) / "there.log").read_text()
