"""The worker's settings: flag > ORCHESTRATE_* environment > orchestrate.yaml ``worker:`` > defaults.

```yaml
worker: {host: 127.0.0.1, port: 8091, max_runs: 4, active_poll: 1s, idle_poll: 30s, grace: 60s, wake: true}
```

Kept free of heavy imports: the CLI reads it to poke a running worker after each write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from orchestrate.domain.errors import UsageError

DEFAULT_PORT = 8091
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class WorkerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_runs: int = 4  # runs the worker has started that may be alive at once
    active_poll: float = 1.0  # seconds between passes while runs are active or queued
    idle_poll: float = 30.0  # ... and when there is nothing to do
    grace: float = 60.0  # on SIGTERM: how long active runs may go on before they are stopped
    wake: bool = True  # commands poke POST /wake after writing work


def _seconds(value: Any, where: str) -> float:
    from orchestrate.spec.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise UsageError(f"orchestrate.yaml: {where}: {e}") from None


def _int(value: Any, where: str, low: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UsageError(f"{where}: {value!r} is not a whole number") from None
    if number < low:
        raise UsageError(f"{where}: must be at least {low}, got {number}")
    return number


def worker_config(config: Mapping[str, Any], env: Mapping[str, str], **flags: Any) -> WorkerConfig:
    """The worker's settings from orchestrate.yaml's ``worker:``, the environment and flags (None: unset)."""
    raw = config.get("worker") or {}
    if not isinstance(raw, dict):
        raise UsageError("orchestrate.yaml: worker: must be a mapping, e.g. {port: 8091, idle_poll: 30s}")
    known = {"host", "port", "max_runs", "active_poll", "idle_poll", "grace", "wake"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(
            f"orchestrate.yaml: worker.{unknown[0]}: unknown key", hint=f"keys: {', '.join(sorted(known))}"
        )
    out = WorkerConfig()
    if "host" in raw:
        out = replace(out, host=str(raw["host"]))
    if "port" in raw:
        out = replace(out, port=_int(raw["port"], "orchestrate.yaml: worker.port", 0))
    if "max_runs" in raw:
        out = replace(out, max_runs=_int(raw["max_runs"], "orchestrate.yaml: worker.max_runs", 1))
    if "active_poll" in raw:
        out = replace(out, active_poll=_seconds(raw["active_poll"], "worker.active_poll"))
    if "idle_poll" in raw:
        out = replace(out, idle_poll=_seconds(raw["idle_poll"], "worker.idle_poll"))
    if "grace" in raw:
        out = replace(out, grace=_seconds(raw["grace"], "worker.grace"))
    if "wake" in raw:
        out = replace(out, wake=bool(raw["wake"]))
    if env.get("ORCHESTRATE_WORKER_PORT"):
        out = replace(out, port=_int(env["ORCHESTRATE_WORKER_PORT"], "ORCHESTRATE_WORKER_PORT", 0))
    if env.get("ORCHESTRATE_WORKER_HOST"):
        out = replace(out, host=env["ORCHESTRATE_WORKER_HOST"])
    given = {k: v for k, v in flags.items() if v is not None}
    out = replace(out, **given)
    if out.active_poll > out.idle_poll:
        raise UsageError(
            f"worker.active_poll ({out.active_poll:g}s) is longer than worker.idle_poll ({out.idle_poll:g}s)",
            hint="the busy interval should be the short one, e.g. active_poll: 1s, idle_poll: 30s",
        )
    return out


def parse_now(value: str | None, where: str = "ORCHESTRATE_NOW") -> float | None:
    """An injected clock (--now, ORCHESTRATE_NOW): ISO 8601 (local time unless it has an offset) or epoch."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{where}: {value!r} is not a time",
            hint="use ISO 8601, e.g. 2030-01-01T06:00:00+00:00, or epoch seconds",
        ) from None
    return moment.timestamp() if moment.tzinfo else moment.astimezone().timestamp()


def env_now(env: Mapping[str, str]) -> float | None:
    return parse_now(env.get("ORCHESTRATE_NOW"))
