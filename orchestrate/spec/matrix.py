"""Matrix fan-out: one stage becomes one instance per combination (issue 5).

``matrix: {python: ["3.10", "3.11"], db: [sqlite, postgres]}`` gives four
instances named ``test[python=3.10,db=sqlite]`` … each reading its values as
``${matrix.python}``. ``exclude`` entries drop the combinations they match on
every key they name; ``include`` entries are added as combinations of their own
(unless already there). Dependents of the stage wait for every instance. The
expansion happens when the definition is compiled, so the plan, the store and
the live table all see the instances.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrate.spec.model import StageSpec

SETTINGS = ("include", "exclude", "max_parallel", "fail_fast")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def combinations(matrix: Mapping[str, Any]) -> list[dict[str, str]]:
    axes = {k: [_text(v) for v in values] for k, values in matrix.items() if k not in SETTINGS}
    combos = (
        [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    )
    for rule in matrix.get("exclude") or ():
        wanted = {k: _text(v) for k, v in rule.items()}
        combos = [c for c in combos if any(c.get(k) != v for k, v in wanted.items())]
    for extra in matrix.get("include") or ():
        combo = {k: _text(v) for k, v in extra.items()}
        if combo not in combos:
            combos.append(combo)
    return combos


def instance_name(stage: str, combo: Mapping[str, str]) -> str:
    return f"{stage}[{','.join(f'{k}={v}' for k, v in combo.items())}]"


def expand(stages: Sequence[StageSpec]) -> tuple[StageSpec, ...]:
    """Every matrix stage replaced by its instances, in place; dependencies rewritten to all of them."""
    groups: dict[str, list[str]] = {}
    instances: dict[str, list[StageSpec]] = {}
    for s in stages:
        if s.matrix:
            copies = [
                dataclasses.replace(s, name=instance_name(s.name, combo), group=s.name, matrix_values=combo)
                for combo in combinations(s.matrix)
            ]
            instances[s.name] = copies
            groups[s.name] = [c.name for c in copies]
    if not groups:
        return tuple(stages)
    out: list[StageSpec] = []
    for s in stages:
        needs = tuple(n for need in s.needs for n in groups.get(need, [need]))
        out.extend(dataclasses.replace(one, needs=needs) for one in instances.get(s.name, [s]))
    return tuple(out)
