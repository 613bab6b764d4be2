"""The name this machine goes by in the store (a run's ``host``), stdlib only.

``ORCHESTRATE_HOSTNAME`` overrides the system's hostname: for containers on different
machines that share one hostname, and for tests that play several hosts on one machine.
Liveness compares a run's recorded host with this name: on the same host a vanished pid
is dead at once; on another host only the heartbeat counts (services/liveness.py).
"""

from __future__ import annotations

import os
import socket

HOSTNAME_ENV = "ORCHESTRATE_HOSTNAME"


def host_name() -> str:
    return os.environ.get(HOSTNAME_ENV, "").strip() or socket.gethostname()
