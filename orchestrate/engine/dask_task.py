"""What runs on a Dask worker for an ``executor: dask`` stage: the command, as a local stage runs it.

This module is shipped to the workers by value (cloudpickle), so a worker needs only
``distributed``, not orchestrate: it imports nothing but the standard library at the
top, and ``distributed`` inside the function.

The task starts the command in its own session (argv, environment and working
directory as given; stdin from /dev/null; stdout and stderr together), and sends what
it prints back in chunks through a ``distributed.Queue`` so that the stage log is
written (and masked) where the run is. Between reads it looks at a
``distributed.Event``: once the run sets it (a timeout, a cancel) the process group
gets SIGTERM, ``grace`` seconds, then SIGKILL. ``$ORCHESTRATE_OUTPUT`` points at a
file on the worker, whose text comes back with the result. Messages on the queue:

    {"t": "start", "pid": ..., "worker": ..., "address": ..., "host": ...}   once, first
    {"t": "out", "data": b"..."}                                               output, in order
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

CHUNK = 65536
FLUSH_EVERY = 0.1  # seconds: output reaches the log this often while the command prints
CANCEL_POLL = 0.2  # seconds between looks at the cancel event (one scheduler round trip each)
DRAIN = 1.0  # seconds: a background child may keep the pipe open after the command exited


def run_stage(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    queue_name: str,
    cancel_name: str,
    grace: float,
) -> dict[str, Any]:
    """Run ``argv`` to its end (or until cancelled); returns exit code, error, outputs text, pid, worker."""
    from distributed import Event, Queue, get_worker

    worker = get_worker()
    queue = Queue(queue_name)
    cancel = Event(cancel_name)
    key = worker.get_current_task()
    where = {"worker": str(worker.name), "address": str(worker.address), "host": socket.gethostname()}

    def stopped() -> bool:
        """The run asked to stop (timeout, cancel), or its client went away and the task was released."""
        try:
            if cancel.is_set():
                return True
        except Exception:  # the scheduler is unreachable: nobody is left to read the output
            return True
        task = worker.state.tasks.get(key)  # the worker's own record of this task
        return task is None or task.state in ("cancelled", "released", "forgotten")

    try:
        return _run(argv, env, cwd, queue, stopped, grace, where)
    finally:
        queue.close()


def _run(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    queue: Any,
    stopped: Callable[[], bool],
    grace: float,
    where: dict[str, str],
) -> dict[str, Any]:
    if not os.path.isdir(cwd):
        message = f"working directory {cwd} does not exist on dask worker {where['worker']} ({where['host']})"
        queue.put({"t": "start", "pid": None, **where})
        queue.put({"t": "out", "data": f"orchestrate: {message}\n".encode()})
        return {"exit_code": 126, "error": message, "outputs": "", "pid": None, **where}
    scratch = tempfile.mkdtemp(prefix="orchestrate-dask-")
    output_path = os.path.join(scratch, "outputs")
    env = {**env, "ORCHESTRATE_OUTPUT": output_path}
    try:
        try:
            process = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
            code, what = (
                (126, "permission denied") if isinstance(e, PermissionError) else (127, "command not found")
            )
            message = f"{what}: {argv[0]}"
            queue.put({"t": "start", "pid": None, **where})
            queue.put({"t": "out", "data": f"orchestrate: {message}\n".encode()})
            return {"exit_code": code, "error": message, "outputs": "", "pid": None, **where}
        queue.put({"t": "start", "pid": process.pid, **where})
        assert process.stdout is not None
        code = _pump(process, process.stdout.fileno(), queue, stopped, grace)
        process.stdout.close()
        outputs = ""
        if os.path.exists(output_path):
            with open(output_path, encoding="utf-8", errors="surrogateescape") as f:
                outputs = f.read()
        return {"exit_code": code, "error": None, "outputs": outputs, "pid": process.pid, **where}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pump(
    process: subprocess.Popen[bytes], fd: int, queue: Any, stopped: Callable[[], bool], grace: float
) -> int:
    """Send the output on until the process exits (and its pipe is drained); stop it when cancelled."""
    pending: list[bytes] = []
    size = 0
    last_flush = last_poll = time.monotonic()
    term_at: float | None = None  # when SIGTERM went to the group
    killed = False
    exited_at: float | None = None
    open_pipe = True
    while open_pipe or exited_at is None:
        if open_pipe:
            ready, _, _ = select.select([fd], [], [], FLUSH_EVERY / 2)
            if ready:
                chunk = os.read(fd, CHUNK)
                if chunk:
                    pending.append(chunk)
                    size += len(chunk)
                else:
                    open_pipe = False
        else:  # the command closed its output but runs on
            time.sleep(FLUSH_EVERY / 2)
        now = time.monotonic()
        if pending and (size >= CHUNK or now - last_flush >= FLUSH_EVERY or not open_pipe):
            queue.put({"t": "out", "data": b"".join(pending)})
            pending, size, last_flush = [], 0, now
        if exited_at is None and process.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > DRAIN:
            break  # a background child holds the pipe: stop copying, as a local stage does
        if term_at is None and exited_at is None and now - last_poll >= CANCEL_POLL:
            last_poll = now
            if stopped():
                term_at = now
                _signal_group(process.pid, signal.SIGTERM)
        if term_at is not None and not killed and exited_at is None and now - term_at >= grace:
            killed = True
            _signal_group(process.pid, signal.SIGKILL)
    if pending:
        queue.put({"t": "out", "data": b"".join(pending)})
    code = process.wait()
    if term_at is not None:
        _signal_group(process.pid, signal.SIGKILL)  # stragglers that ignored SIGTERM
    return code


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
