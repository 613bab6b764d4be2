"""The runs a worker started: child processes, at most ``max_runs`` alive, stopped gracefully.

Each run goes to ``orchestrate pipeline resume RUN --plain --no-wait`` in a process of
its own session (the detached-run mechanism of ``pipeline run --detach``), its output
appended to ``logs/<run>/run.log``. ``--no-wait``: a run reaching an approval gate exits
(freeing its place) and the worker continues it once the gate is decided.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrate.services.runs import orchestrate_argv

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store.scheduling import Scheduling


@dataclass
class Child:
    run_id: str
    reason: str
    proc: subprocess.Popen[bytes]
    started_at: float


class Children:
    def __init__(self, settings: Settings, scheduling: Scheduling, worker: str, max_runs: int) -> None:
        self.settings = settings
        self.scheduling = scheduling
        self.worker = worker
        self.max_runs = max_runs
        self.live: dict[str, Child] = {}

    def reap(self) -> list[tuple[Child, int]]:
        """Children that exited since the last call, with their exit codes."""
        done = [(c, code) for c in self.live.values() if (code := c.proc.poll()) is not None]
        for child, _ in done:
            del self.live[child.run_id]
        return done

    def has_capacity(self) -> bool:
        return self.free() > 0

    def free(self) -> int:
        """How many more runs may start now."""
        # poll() without reaping: the loop reaps (and logs) the exits at the start of its pass
        return self.max_runs - sum(1 for c in self.live.values() if c.proc.poll() is None)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self.live

    def __len__(self) -> int:
        return len(self.live)

    def start(self, run_id: str, reason: str, launch_id: int | None = None) -> Child:
        """Start the run's process; ``launch_id``: the launch row a takeover claim already wrote."""
        log = self.settings.logs_dir / run_id / "run.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = orchestrate_argv(self.settings, "pipeline", "resume", run_id, "--plain", "--no-wait")
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the worker's terminal is the worker's alone
                cwd=self.settings.root,
            )
        child = Child(run_id, reason, proc, time.time())
        self.live[run_id] = child
        if launch_id is None:
            self.scheduling.launched(run_id, reason, child.started_at, self.worker, proc.pid)
        else:
            self.scheduling.launch_started(launch_id, proc.pid)
        return child

    def drain(self, grace: float) -> list[str]:
        """Wait up to ``grace`` seconds for the children, then stop the rest; the ids stopped.

        A stopped run gets SIGTERM: its process cancels its stages (their own grace, then
        SIGKILL), records the run as cancelled by SIGTERM and writes its checkpoint. The
        worker marks it interrupted, and the next worker to start resumes it.
        """
        deadline = time.monotonic() + grace
        while self.live and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.1)
        stopped = list(self.live)
        now = time.time()
        for child in self.live.values():
            self.scheduling.interrupted(child.run_id, self.worker, now)
            try:
                child.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15.0  # a run's own stage grace is 5 s
        while self.live and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.1)
        for child in self.live.values():  # did not stop: it will be found orphaned and resumed
            child.proc.kill()
            child.proc.wait()
        self.live.clear()
        return stopped
