"""``pipeline diff``: two runs compared stage by stage (status, duration, outputs, tokens, cost)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Reserved output keys that carry usage (DESIGN §6).
USAGE_KEYS = ("model", "input_tokens", "output_tokens", "cost_usd", "prompt_variant", "skill_version")


@dataclass(frozen=True)
class StageDiff:
    name: str
    a: Mapping[str, Any] | None  # None: the stage is not in that run
    b: Mapping[str, Any] | None
    changed: tuple[str, ...] = ()  # which facts differ


@dataclass(frozen=True)
class RunDiff:
    a: Mapping[str, Any]
    b: Mapping[str, Any]
    stages: tuple[StageDiff, ...] = field(default_factory=tuple)

    def to_dict(self, every: bool = False) -> dict[str, Any]:
        return {
            "a": {
                k: self.a[k] for k in ("id", "pipeline", "version", "status", "duration_seconds", "variables")
            },
            "b": {
                k: self.b[k] for k in ("id", "pipeline", "version", "status", "duration_seconds", "variables")
            },
            "stages": [
                {"name": s.name, "changed": list(s.changed), "a": s.a, "b": s.b}
                for s in self.stages
                if every or s.changed
            ],
        }


def _facts(stage: Mapping[str, Any]) -> dict[str, Any]:
    outputs = dict(stage.get("outputs") or {})
    return {
        "status": stage["status"],
        "duration_seconds": stage["duration_seconds"],
        "attempts": len(stage["attempts"]),
        "outputs": {k: v for k, v in outputs.items() if k not in USAGE_KEYS},
        **{k: outputs.get(k) for k in USAGE_KEYS},
    }


def _changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for key in a:
        if key == "duration_seconds":
            x, y = a[key], b[key]
            # Durations always differ a little; say so when one is 20% (and 0.5 s) off the other.
            if (x is None) != (y is None) or (x is not None and abs(x - y) > max(0.5, 0.2 * max(x, y))):
                out.append(key)
        elif a[key] != b[key]:
            out.append(key)
    return tuple(out)


def diff_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> RunDiff:
    """Compare two run records (``Store.run_record``)."""
    sa = {s["name"]: _facts(s) for s in a["stages"]}
    sb = {s["name"]: _facts(s) for s in b["stages"]}
    names = list(sa) + [n for n in sb if n not in sa]
    stages = []
    for name in names:
        x, y = sa.get(name), sb.get(name)
        changed = ("presence",) if x is None or y is None else _changed(x, y)
        stages.append(StageDiff(name, x, y, changed))
    return RunDiff(a, b, tuple(stages))
