"""Durations as written in pipelines: "250ms", "10s", "30m", "1.5h", "2d", or plain seconds.

The same pattern is used by schema.json, so an editor and the loader agree on what
a duration is; ``duration_error`` gives both the loader and ``parse_duration`` one
wording, with a suggestion when the intent is recognisable ("30 minutes" → 30m).
"""

from __future__ import annotations

import math
import re

# Kept identical to "$defs/duration" in schema.json (tests assert it).
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# Spelled-out units people write by habit, mapped to the unit they meant.
_WORDS = {
    "ms": "ms",
    "msec": "ms",
    "msecs": "ms",
    "millisecond": "ms",
    "milliseconds": "ms",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "day": "d",
    "days": "d",
}
_SPELLED = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")


def duration_error(value: object) -> str:
    """The message for a value that is not a duration, suggesting the likely spelling."""
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    if isinstance(value, str):
        m = _SPELLED.match(value)
        if m and m.group(2).lower() in _WORDS:
            return f"{shown} is not a duration (use {m.group(1)}{_WORDS[m.group(2).lower()]})"
        if value.strip() != value and _DURATION.match(value.strip()):
            return f"{shown} is not a duration (use {value.strip()})"
    return f"{shown} is not a duration (use e.g. 30s, 10m, 1.5h or 2d)"


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; raise ValueError with a message fit for a user."""
    if isinstance(value, bool):  # bool is an int subclass; `timeout: yes` is a mistake
        raise ValueError(duration_error(value))
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(duration_error(value))
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            unit = m.group(2)
            return float(value[: -len(unit)]) * _UNIT_SECONDS[unit]
    raise ValueError(duration_error(value))
