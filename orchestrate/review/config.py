"""``review:`` in orchestrate.yaml: the review's thresholds, and what it schedules.

Every key is optional; an unknown key, or a value of the wrong kind, is an error
naming the file and the key (``orchestrate.yaml: review.cooldwn: unknown key``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import WorkspaceError
from orchestrate.domain.review import FindingKind

if TYPE_CHECKING:
    from orchestrate.settings import Settings

DAY = 86400.0


@dataclass(frozen=True)
class ReviewConfig:
    stale_after: float = 6 * 3600.0  # a running run with no transition for this long is stale
    lookback: float = 30 * DAY  # history older than this is not reviewed
    consecutive_failures: int = 3  # the same stage failing in this many consecutive runs
    timeout_ratio: float = 0.3  # this share of a stage's recent attempts timing out...
    timeout_window: int = 10  # ... out of its last N attempts ...
    timeout_min_attempts: int = 3  # ... once it has at least this many
    duration_ratio: float = 1.5  # P95 of the last N succeeded attempts vs the N before
    duration_window: int = 10
    min_duration: float = 1.0  # ... and only when the P95 grew by at least this many seconds (not noise)
    cost_ratio: float = 3.0  # a run costing this many times its pipeline's median
    cost_window: int = 50  # the median is over the pipeline's last N runs that reported a cost ...
    cost_min_runs: int = 5  # ... once there are at least this many
    approval_ratio: float = 3.0  # pending longer than this many times the pipeline's median decision
    approval_min_decisions: int = 3  # the median needs at least this many decided requests
    goal_window: float = 7 * DAY  # goals: the trend window (see domain.review)
    cooldown: float = DAY  # a finding schedules at most once per cool-down
    auto_schedule: bool = False  # the worker applies the review by itself
    on: Mapping[FindingKind, str] = field(default_factory=dict)  # finding kind → pipeline to start


_DURATIONS = ("stale_after", "lookback", "goal_window", "cooldown")
_COUNTS = (
    "consecutive_failures",
    "timeout_window",
    "timeout_min_attempts",
    "duration_window",
    "cost_window",
    "cost_min_runs",
    "approval_min_decisions",
)
_RATIOS = ("timeout_ratio", "duration_ratio", "cost_ratio", "approval_ratio")
# The range of each ratio: (lowest, lowest included, highest), and an example for the hint.
_RANGES: dict[str, tuple[float, bool, float | None, str]] = {
    "timeout_ratio": (0.0, False, 1.0, "a share of attempts above 0 and at most 1, e.g. 0.3"),
    "duration_ratio": (1.0, False, None, "a factor above 1, e.g. 1.5"),
    "cost_ratio": (1.0, False, None, "a factor above 1, e.g. 3"),
    "approval_ratio": (1.0, True, None, "a factor of at least 1, e.g. 3"),
}
KEYS = (*_DURATIONS, "min_duration", *_COUNTS, *_RATIOS, "auto_schedule", "on")


def review_config(settings: Settings) -> ReviewConfig:
    """The ``review:`` mapping of orchestrate.yaml, checked; defaults for what it leaves out."""
    from orchestrate.observe.service import stale_after

    where = f"{settings.root / 'orchestrate.yaml'}: review"
    raw = settings.config.get("review")
    values: dict[str, Any] = {"stale_after": stale_after(settings)}  # the workspace's, unless overridden
    if raw is None:
        return ReviewConfig(**values)
    if not isinstance(raw, Mapping):
        raise WorkspaceError(f"{where}: must be a mapping of settings, got {type(raw).__name__}")
    for key, value in raw.items():
        if key is True:  # YAML 1.1 (PyYAML) reads a bare `on:` key as the boolean true
            key = "on"
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            raise WorkspaceError(
                f"{where}.{key}: unknown key",
                hint=(f'did you mean "{close[0]}"? ' if close else "") + "known keys: " + ", ".join(KEYS),
            )
        values[key] = _value(f"{where}.{key}", key, value)
    return ReviewConfig(**values)


def _value(where: str, key: str, value: Any) -> Any:
    if key in _DURATIONS:
        from orchestrate.spec.durations import parse_duration

        try:
            seconds = parse_duration(value)
        except ValueError as e:
            raise WorkspaceError(f"{where}: {e}") from None
        if seconds <= 0:
            raise WorkspaceError(f"{where}: must be longer than 0")
        return seconds
    if key in _COUNTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WorkspaceError(f"{where}: {value!r} is not a whole number of at least 1")
        return value
    if key == "min_duration":  # 0 turns the floor off
        from orchestrate.spec.durations import parse_duration

        try:
            seconds = parse_duration(value)
        except ValueError as e:
            raise WorkspaceError(f"{where}: {e}") from None
        if seconds < 0:
            raise WorkspaceError(f"{where}: must not be negative")
        return seconds
    if key in _RATIOS:
        low, included, high, wanted = _RANGES[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value != value  # NaN
            or (value < low if included else value <= low)
            or (high is not None and value > high)
        ):
            raise WorkspaceError(f"{where}: {value!r} is out of range: must be {wanted}")
        return float(value)
    if key == "auto_schedule":
        if not isinstance(value, bool):
            raise WorkspaceError(f"{where}: {value!r} is not true or false")
        return value
    return _on(where, value)


def _on(where: str, value: Any) -> dict[FindingKind, str]:
    kinds = [k.value for k in FindingKind]
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WorkspaceError(
            f"{where}: must map finding kinds to pipelines", hint="e.g. on: {repeated_failure: diagnose}"
        )
    out: dict[FindingKind, str] = {}
    for kind, pipeline in value.items():
        if kind not in kinds:
            close = difflib.get_close_matches(str(kind), kinds, n=1)
            raise WorkspaceError(
                f"{where}.{kind}: not a finding kind",
                hint=(f'did you mean "{close[0]}"? ' if close else "") + "kinds: " + ", ".join(kinds),
            )
        if not isinstance(pipeline, str) or not pipeline.strip():
            raise WorkspaceError(f"{where}.{kind}: must name a pipeline, got {pipeline!r}")
        out[FindingKind(kind)] = pipeline.strip()
    return out
