from __future__ import annotations

import json

import pytest

from orchestrate.spec.durations import DURATION_PATTERN, parse_duration
from orchestrate.spec.schema_errors import SCHEMA_PATH


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("250ms", 0.25),
        ("0s", 0.0),
        ("10s", 10.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("0.5s", 0.5),
        (90, 90.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30 minutes", '"30 minutes" is not a duration (use 30m)'),
        ("1 hour", '"1 hour" is not a duration (use 1h)'),
        ("10sec", '"10sec" is not a duration (use 10s)'),
        ("2 Days", '"2 Days" is not a duration (use 2d)'),
        (" 5m", '" 5m" is not a duration (use 5m)'),
        ("5", '"5" is not a duration (use e.g. 30s, 10m, 1.5h or 2d)'),
        ("1h30m", '"1h30m" is not a duration (use e.g. 30s, 10m, 1.5h or 2d)'),
        ("-5s", '"-5s" is not a duration (use e.g. 30s, 10m, 1.5h or 2d)'),
        ("", '"" is not a duration (use e.g. 30s, 10m, 1.5h or 2d)'),
        (-1, "-1 is not a duration (use e.g. 30s, 10m, 1.5h or 2d)"),
        (True, "True is not a duration (use e.g. 30s, 10m, 1.5h or 2d)"),
        (float("inf"), "inf is not a duration (use e.g. 30s, 10m, 1.5h or 2d)"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_schema_uses_the_same_pattern() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$defs"]["duration"]["pattern"] == DURATION_PATTERN
