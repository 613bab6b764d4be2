"""Is the process running a run still alive? (DESIGN §3; issue 4: heartbeat, orphans)."""

from __future__ import annotations

import os
import socket
import time
from functools import cache

HEARTBEAT_EVERY = 5.0  # seconds between a run process's heartbeats
DEAD_AFTER = 30.0  # a process that has not beaten for this long is dead


@cache
def this_host() -> str:
    return socket.gethostname()


def pid_exists(pid: int) -> bool:
    """A running process (a zombie, exited but not yet reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill(0)


def process_alive(
    pid: int | None, host: str | None, heartbeat_at: float | None, now: float | None = None
) -> bool:
    """True while the run's process beats; on this host a vanished pid is dead at once."""
    if pid is None:
        return False
    now = time.time() if now is None else now
    fresh = heartbeat_at is not None and now - heartbeat_at < DEAD_AFTER
    if host == this_host():
        return pid_exists(pid) and fresh
    return fresh
