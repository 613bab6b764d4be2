"""The worker's settings: flag > ORCHESTRATE_* environment > orchestrate.yaml ``worker:`` > defaults.

```yaml
worker: {host: 127.0.0.1, port: 8091, max_runs: 4, active_poll: 1s, idle_poll: 30s, grace: 60s, wake: true,
         watch_store: true}
```

``active_poll`` and ``idle_poll`` are at least ``MIN_POLL`` (0.05 s); ``port`` is 0..65535 (0:
any free port); ``wake`` and ``watch_store`` are true or false.

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
MIN_POLL = 0.05  # seconds: a shorter poll would spin
MAX_PORT = 65535


@dataclass(frozen=True)
class WorkerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_runs: int = 4  # runs the worker has started that may be alive at once
    active_poll: float = 1.0  # seconds between passes while runs are active or queued
    idle_poll: float = 30.0  # ... and when there is nothing to do
    grace: float = 60.0  # on SIGTERM: how long active runs may go on before they are stopped
    wake: bool = True  # commands poke POST /wake after writing work
    watch_store: bool = True  # wake on a write to the SQLite store file (watchfiles)


def _seconds(value: Any, where: str) -> float:
    from orchestrate.spec.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise UsageError(f"orchestrate.yaml: {where}: {e}") from None


def _poll(value: Any, where: str) -> float:
    seconds = _seconds(value, where)
    if seconds < MIN_POLL:
        raise UsageError(
            f"orchestrate.yaml: {where}: {value!r} is too short (at least {MIN_POLL:g}s)",
            hint="e.g. active_poll: 1s, idle_poll: 30s",
        )
    return seconds


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):  # YAML 1.1 'no' is a string to this parser: refuse, do not guess
        raise UsageError(f"orchestrate.yaml: {where}: {value!r} is not true or false")
    return value


def _int(value: Any, where: str, low: int, high: int | None = None) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UsageError(f"{where}: {value!r} is not a whole number") from None
    if number < low:
        raise UsageError(f"{where}: must be at least {low}, got {number}")
    if high is not None and number > high:
        raise UsageError(f"{where}: must be at most {high}, got {number}")
    return number


def worker_config(config: Mapping[str, Any], env: Mapping[str, str], **flags: Any) -> WorkerConfig:
    """The worker's settings from orchestrate.yaml's ``worker:``, the environment and flags (None: unset)."""
    raw = config.get("worker") or {}
    if not isinstance(raw, dict):
        raise UsageError("orchestrate.yaml: worker: must be a mapping, e.g. {port: 8091, idle_poll: 30s}")
    known = {"host", "port", "max_runs", "active_poll", "idle_poll", "grace", "wake", "watch_store"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(
            f"orchestrate.yaml: worker.{unknown[0]}: unknown key", hint=f"keys: {', '.join(sorted(known))}"
        )
    out = WorkerConfig()
    if "host" in raw:
        out = replace(out, host=str(raw["host"]))
    if "port" in raw:
        out = replace(out, port=_int(raw["port"], "orchestrate.yaml: worker.port", 0, MAX_PORT))
    if "max_runs" in raw:
        out = replace(out, max_runs=_int(raw["max_runs"], "orchestrate.yaml: worker.max_runs", 1))
    if "active_poll" in raw:
        out = replace(out, active_poll=_poll(raw["active_poll"], "worker.active_poll"))
    if "idle_poll" in raw:
        out = replace(out, idle_poll=_poll(raw["idle_poll"], "worker.idle_poll"))
    if "grace" in raw:
        out = replace(out, grace=_seconds(raw["grace"], "worker.grace"))
    if "wake" in raw:
        out = replace(out, wake=_bool(raw["wake"], "worker.wake"))
    if "watch_store" in raw:
        out = replace(out, watch_store=_bool(raw["watch_store"], "worker.watch_store"))
    if env.get("ORCHESTRATE_WORKER_PORT"):
        out = replace(out, port=_int(env["ORCHESTRATE_WORKER_PORT"], "ORCHESTRATE_WORKER_PORT", 0, MAX_PORT))
    if env.get("ORCHESTRATE_WORKER_HOST"):
        out = replace(out, host=env["ORCHESTRATE_WORKER_HOST"])
    check_liveness_env(env)
    given = {k: v for k, v in flags.items() if v is not None}
    out = replace(out, **given)
    if out.active_poll > out.idle_poll:
        raise UsageError(
            f"orchestrate.yaml: worker.active_poll ({out.active_poll:g}s) is longer than worker.idle_poll "
            f"({out.idle_poll:g}s)",
            hint="the busy interval should be the short one, e.g. active_poll: 1s, idle_poll: 30s",
        )
    return out


def check_liveness_env(env: Mapping[str, str]) -> None:
    """ORCHESTRATE_HEARTBEAT_EVERY / ORCHESTRATE_DEAD_AFTER, if set: positive seconds, beats shorter than death.

    Every process reads them (services/liveness.py) and falls back to 5 s / 30 s on a bad
    value; the worker refuses one instead, so a typo does not go unnoticed where it matters.
    """
    from orchestrate.services.liveness import DEAD_AFTER_ENV, HEARTBEAT_ENV

    values: dict[str, float] = {}
    for name, default in ((HEARTBEAT_ENV, 5.0), (DEAD_AFTER_ENV, 30.0)):
        raw = env.get(name, "").strip()
        if not raw:
            values[name] = default
            continue
        try:
            values[name] = float(raw.removesuffix("s"))
        except ValueError:
            values[name] = 0.0
        if values[name] <= 0:
            raise UsageError(
                f"{name}: {raw!r} is not a positive number of seconds", hint=f"e.g. {name}={default:g}"
            )
    if values[HEARTBEAT_ENV] >= values[DEAD_AFTER_ENV]:
        raise UsageError(
            f"{HEARTBEAT_ENV} ({values[HEARTBEAT_ENV]:g}s) must be shorter than {DEAD_AFTER_ENV} "
            f"({values[DEAD_AFTER_ENV]:g}s): a live run would look dead between two heartbeats",
            hint="keep a few heartbeats within the dead time, e.g. 5 and 30",
        )


def parse_now(value: str | None, where: str = "ORCHESTRATE_NOW") -> float | None:
    """An injected clock (--now, ORCHESTRATE_NOW): ISO 8601 (local time unless it has an offset) or epoch."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        epoch = float(text)
    except ValueError:
        pass
    else:
        if not epoch > 0:
            raise UsageError(
                f"{where}: {value!r} is not a time (epoch seconds are positive)",
                hint="use ISO 8601, e.g. 2030-01-01T06:00:00+00:00, or epoch seconds",
            )
        return epoch
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
