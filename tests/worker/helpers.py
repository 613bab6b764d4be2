"""A real ``orchestrate worker`` process on a free port, for the worker's tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(workspace: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATE_")}
    if os.environ.get("ORCHESTRATE_DATABASE_URL"):  # the PostgreSQL pass: the workspace's database
        env["ORCHESTRATE_DATABASE_URL"] = os.environ["ORCHESTRATE_DATABASE_URL"]
    return {**env, "ORCHESTRATE_HOME": str(workspace), **extra}


def orchestrate(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, as a user (or cron) runs it."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        env=env_for(workspace, **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workspace,
    )


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WorkerProcess:
    """``orchestrate worker`` as a subprocess; its output goes to a file the test can read."""

    def __init__(self, workspace: Path, *args: str, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.out = workspace / f"worker-{self.port}.out"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrate", "worker", "--port", str(self.port), *args],
            env=env_for(workspace, **env),
            stdout=open(self.out, "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            cwd=workspace,
        )
        wait_for(self._up, 20.0, f"the worker on port {self.port}")

    def _up(self) -> bool:
        try:
            return self.health()["passes"] >= 1
        except OSError:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}: {self.output()}") from None
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, str, str]:
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()

    def health(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/health")[2]))

    def wake(self) -> int:
        request = urllib.request.Request(self.url + "/wake", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=5) as r:
            return int(r.status)

    def passes_after(self, n: int = 2) -> None:
        """Wait until the worker has done ``n`` more passes (each woken on purpose)."""
        target = self.health()["passes"] + n
        for _ in range(n):
            self.wake()
            time.sleep(0.1)
        wait_for(lambda: self.health()["passes"] >= target, 10.0, f"{n} more passes")

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
