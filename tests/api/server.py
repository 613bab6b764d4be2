"""A real ``orchestrate serve`` process on a free port, for the API and browser tests."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef00"
CAROL = "carol-token-0123456789abcdef0"
TOKENS = f"{ALICE}=alice,{BOB}=bob,{CAROL}=carol"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    banner: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def serving(workspace: Path, *args: str, tokens: str | None = TOKENS) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATE_")}
    if os.environ.get("ORCHESTRATE_DATABASE_URL"):  # the PostgreSQL pass: the workspace's database
        env["ORCHESTRATE_DATABASE_URL"] = os.environ["ORCHESTRATE_DATABASE_URL"]
    env["ORCHESTRATE_USER"] = "server-owner"
    if tokens is not None:
        env["ORCHESTRATE_API_TOKENS"] = tokens
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "orchestrate",
        "--workspace",
        str(workspace),
        "serve",
        "--port",
        str(port),
        *args,
    ]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    banner: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"orchestrate serve exited: {process.stdout.read().decode() if process.stdout else ''}"
                    ) from None
                time.sleep(0.1)
        else:
            raise RuntimeError("orchestrate serve did not start within 20 s")
        assert process.stdout is not None
        # The banner is printed (and flushed) before the server listens: read what is there.
        fd = process.stdout.fileno()
        while select.select([fd], [], [], 0.5)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            banner.append(chunk.decode())
        yield Server(f"http://127.0.0.1:{port}", port, process, "".join(banner))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, timeout: float = 20.0, every: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(every)
