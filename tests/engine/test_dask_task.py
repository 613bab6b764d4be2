"""The code a Dask worker runs for a stage (engine.dask_task), driven without a cluster.

``_run`` takes the queue and the stop check as arguments, so here they are a list and a
flag: what the worker would send and when the run would ask it to stop.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from orchestrate.engine import dask_task

WHERE = {"worker": "w-test", "address": "tcp://127.0.0.1:1", "host": "here"}


class ListQueue:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put(self, item: dict[str, Any]) -> None:
        self.items.append(item)

    def output(self) -> bytes:
        return b"".join(i["data"] for i in self.items if i["t"] == "out")


def run(
    argv: list[str], cwd: Path, stop_after: float | None = None, grace: float = 0.3
) -> tuple[dict, ListQueue]:  # type: ignore[type-arg]
    queue = ListQueue()
    started = time.monotonic()

    def stopped() -> bool:
        return stop_after is not None and time.monotonic() - started >= stop_after

    env = {"PATH": os.environ["PATH"], "ORCHESTRATE_OUTPUT": "/nonexistent/local/path"}
    return dask_task._run(argv, env, str(cwd), queue, stopped, grace, WHERE), queue


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_output_start_message_outputs_and_exit_code(tmp_path: Path) -> None:
    script = (
        'pwd; echo err >&2; echo "k=v" >> "$ORCHESTRATE_OUTPUT"; echo "n=2" >> "$ORCHESTRATE_OUTPUT"; exit 4'
    )
    result, queue = run(["/bin/sh", "-c", script], tmp_path)
    assert result["exit_code"] == 4 and result["error"] is None
    assert result["outputs"] == "k=v\nn=2\n"  # written to a file on the worker, sent back as text
    start = queue.items[0]
    assert start["t"] == "start" and start["pid"] == result["pid"] and start["worker"] == "w-test"
    assert queue.output() == f"{tmp_path}\nerr\n".encode()  # stdout and stderr, in the working directory


def test_command_not_found_is_127_with_a_log_line(tmp_path: Path) -> None:
    result, queue = run(["no-such-program-abc"], tmp_path)
    assert (result["exit_code"], result["error"]) == (127, "command not found: no-such-program-abc")
    assert queue.output() == b"orchestrate: command not found: no-such-program-abc\n"


def test_a_missing_working_directory_fails_clearly(tmp_path: Path) -> None:
    result, _ = run(["true"], tmp_path / "not-here")
    assert result["exit_code"] == 126
    assert (
        result["error"]
        == f"working directory {tmp_path / 'not-here'} does not exist on dask worker w-test (here)"
    )


def test_stop_sends_sigterm_to_the_group_then_sigkill_after_grace(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The command ignores SIGTERM and has a child that does too: only SIGKILL to the group ends both.
    script = f"trap '' TERM; sh -c \"trap '' TERM; sleep 30\" & echo $! > {pids}; echo ready; sleep 30"
    started = time.monotonic()
    result, queue = run(["/bin/sh", "-c", script], tmp_path, stop_after=0.5, grace=0.5)
    assert result["exit_code"] == -9  # killed by SIGKILL, as a local stage would report it
    assert time.monotonic() - started < 10
    assert b"ready\n" in queue.output()
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_a_stopped_command_that_obeys_sigterm_exits_by_it(tmp_path: Path) -> None:
    result, _ = run([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, stop_after=0.3, grace=5)
    assert result["exit_code"] == -15


def test_a_background_child_holding_the_pipe_does_not_hold_the_stage(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    result, queue = run(["/bin/sh", "-c", f"sleep 30 & echo $! > {pids}; echo done"], tmp_path)
    assert result["exit_code"] == 0 and b"done\n" in queue.output()
    assert time.monotonic() - started < 10
    os.kill(int(pids.read_text()), 9)
