"""Poking a running worker after a command wrote work for it (``POST /wake``), best-effort.

A command that queues a run, emits an event or decides an approval calls ``poke``: the
worker (if one listens on the configured address) runs a pass at once instead of at its
next poll. Nothing here may fail or slow the command: a short timeout, every error ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TIMEOUT = 0.3  # seconds: a local worker answers in a few milliseconds


def poke(config: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    """True when a worker acknowledged the wake-up; False (silently) otherwise."""
    import urllib.request

    try:
        from orchestrate.worker.config import worker_config

        cfg = worker_config(config, env)
        if not cfg.wake or cfg.port == 0:
            return False
        host = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
        request = urllib.request.Request(f"http://{host}:{cfg.port}/wake", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return bool(response.status == 202)
    except Exception:  # best-effort by design: no worker, a refused port, a bad config
        return False
