"""Is the process running a run still alive? (DESIGN §3; issue 4: heartbeat, orphans)."""

from __future__ import annotations

import os
import time
from functools import cache

from orchestrate.domain.hosts import host_name

HEARTBEAT_ENV = "ORCHESTRATE_HEARTBEAT_EVERY"
DEAD_AFTER_ENV = "ORCHESTRATE_DEAD_AFTER"


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment; the default when unset or not one.

    Read once per process, at import: every process sharing a store should be given the
    same values (``orchestrate worker`` refuses malformed ones with a clear message).
    """
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw.removesuffix("s")) if raw else default
    except ValueError:
        return default
    return value if value > 0 else default


# Seconds between a run process's heartbeats, and the silence after which it is dead.
# A run on another host is judged by its heartbeat alone, so DEAD_AFTER is how long a
# crashed host's runs wait before another worker resumes them. Tests shorten both.
HEARTBEAT_EVERY = env_seconds(HEARTBEAT_ENV, 5.0)
DEAD_AFTER = env_seconds(DEAD_AFTER_ENV, 30.0)


@cache
def this_host() -> str:
    return host_name()


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
