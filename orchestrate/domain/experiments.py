"""Experiments (DESIGN §8): which variant of each experiment a run gets.

``hash`` assignment maps ``sha256(experiment + ":" + run id)`` to a point in [0, 1) and
picks the variant whose slice of the cumulative weights holds it: the same run id always
gets the same variant, and over many runs each variant gets its weight's share (run ids
are unique, and SHA-256 spreads them uniformly). The experiment name is part of the hash
so two experiments of one pipeline are assigned independently. ``random`` draws the
point from a random generator instead. ``--variant NAME=VALUE`` forces one.

Stdlib only: the run path imports this.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrate.domain.errors import UsageError

FORCED = "forced"  # assigned_by of a --variant choice; otherwise the experiment's assign (hash | random)


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float = 1.0
    fields: Mapping[str, str] = field(default_factory=dict)  # prompt, model, skill as written


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[Variant, ...]
    assign: str = "hash"  # hash | random
    stages: tuple[str, ...] | None = None  # the stages it applies to; None: all

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def applies_to(self, stage: str) -> bool:
        return self.stages is None or stage in self.stages


@dataclass(frozen=True)
class Assignment:
    """The variant a run got for one experiment, and how it was chosen."""

    experiment: Experiment
    variant: Variant
    assigned_by: str  # hash | random | forced

    @property
    def pair(self) -> str:
        return f"{self.experiment.name}={self.variant.name}"


def experiments_of(raw: Sequence[Mapping[str, Any]] | None) -> tuple[Experiment, ...]:
    """The typed experiments of a compiled definition (``PipelineSpec.experiments``)."""
    out: list[Experiment] = []
    for e in raw or ():
        variants = tuple(
            Variant(
                str(v["name"]),
                float(v.get("weight", 1)),
                {k: str(v[k]) for k in ("prompt", "model", "skill") if v.get(k) is not None},
            )
            for v in e["variants"]
        )
        stages = e.get("stages")
        out.append(
            Experiment(
                str(e["name"]),
                variants,
                str(e.get("assign") or "hash"),
                tuple(stages) if stages is not None else None,
            )
        )
    return tuple(out)


def hash_point(experiment: str, run_id: str) -> float:
    """A point in [0, 1) that depends only on the experiment name and the run id."""
    digest = hashlib.sha256(f"{experiment}:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick(experiment: Experiment, point: float) -> Variant:
    """The variant whose slice of the cumulative weights holds ``point`` (0 <= point < 1)."""
    total = sum(v.weight for v in experiment.variants)
    edge = 0.0
    chosen = [v for v in experiment.variants if v.weight > 0]
    for variant in chosen:
        edge += variant.weight / total
        if point < edge:
            return variant
    return chosen[-1]  # rounding at the very top of the range


def parse_forced(pairs: Iterable[str], experiments: Sequence[Experiment], pipeline: str) -> dict[str, str]:
    """``--variant NAME=VALUE`` options, checked against the pipeline's experiments."""
    known = {e.name: e for e in experiments}
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UsageError(
                f"--variant {pair!r}: expected NAME=VALUE", hint="e.g. --variant prompt-style=terse"
            )
        experiment = known.get(name)
        if experiment is None:
            listed = ", ".join(known) or "none"
            raise UsageError(
                f"--variant {pair}: pipeline {pipeline} has no experiment {name!r} (experiments: {listed})",
                hint="declare it under experiments: in the pipeline file",
            )
        if experiment.variant(value) is None:
            listed = ", ".join(v.name for v in experiment.variants)
            raise UsageError(
                f"--variant {pair}: experiment {name} has no variant {value!r} (variants: {listed})",
                hint=f"e.g. --variant {name}={experiment.variants[0].name}",
            )
        if name in out and out[name] != value:
            raise UsageError(
                f"--variant {pair}: experiment {name} is already forced to {out[name]!r} "
                f"(--variant {name}={out[name]})",
                hint=f"give --variant {name}=... once",
            )
        out[name] = value
    return out


def assign(
    experiments: Sequence[Experiment],
    run_id: str,
    forced: Mapping[str, str] | None = None,
    rng: random.Random | None = None,
) -> list[Assignment]:
    """One assignment per experiment: forced, else by hash of the run id, else at random by weight."""
    out: list[Assignment] = []
    draw = rng or random.Random()
    for experiment in experiments:
        name = (forced or {}).get(experiment.name)
        if name is not None:
            variant = experiment.variant(name)
            assert variant is not None  # parse_forced checked it
            out.append(Assignment(experiment, variant, FORCED))
            continue
        if experiment.assign == "random":
            out.append(Assignment(experiment, pick(experiment, draw.random()), "random"))
        else:
            out.append(Assignment(experiment, pick(experiment, hash_point(experiment.name, run_id)), "hash"))
    return out


def restore(experiments: Sequence[Experiment], stored: Mapping[str, tuple[str, str]]) -> list[Assignment]:
    """Assignments from stored (variant, assigned_by) per experiment; ones the definition lacks are dropped."""
    out: list[Assignment] = []
    for experiment in experiments:
        if experiment.name in stored:
            name, by = stored[experiment.name]
            variant = experiment.variant(name)
            if variant is not None:
                out.append(Assignment(experiment, variant, by))
    return out


def lookup(assignments: Sequence[Assignment], ref: str, stage: str | None = None) -> str | None:
    """``variant.NAME`` → the variant's name; ``variant.NAME.FIELD`` → its prompt, model or skill.

    With ``stage``, only experiments that apply to it (their ``stages:``) are seen: None otherwise.
    """
    rest = ref.removeprefix("variant.")
    seen = [a for a in assignments if stage is None or a.experiment.applies_to(stage)]
    for a in seen:
        if rest == a.experiment.name:
            return a.variant.name
    name, _, fieldname = rest.rpartition(".")
    for a in seen:
        if name == a.experiment.name:
            return a.variant.fields.get(fieldname, "")
    return None


def stage_skill(assignments: Sequence[Assignment], stage: str) -> str | None:
    """The skill (path) a variant sets for this stage (the first applying experiment's), if any."""
    for a in assignments:
        if "skill" in a.variant.fields and a.experiment.applies_to(stage):
            return a.variant.fields["skill"]
    return None


def stage_model(assignments: Sequence[Assignment], stage: str) -> str | None:
    """The model a variant sets for this stage (the first applying experiment's), if any."""
    for a in assignments:
        if "model" in a.variant.fields and a.experiment.applies_to(stage):
            return a.variant.fields["model"]
    return None


def prompt_variant(assignments: Sequence[Assignment], stage: str) -> str | None:
    """What a stage attempt's metric row records: ``name=variant`` pairs of the experiments applying to it."""
    pairs = sorted(a.pair for a in assignments if a.experiment.applies_to(stage))
    return ",".join(pairs) or None
