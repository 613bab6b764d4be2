"""Experiments (DESIGN §8; issue 10): each run's variants, assigned once and stored.

``pipeline run`` assigns them when it stores the run (``--variant`` forces one); a run
started any other way (an event, the worker, a child run) gets them when it first
executes. Either way they are stored in ``run_variants`` before any stage starts, and a
resumed run keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrate.domain.experiments import Assignment, assign, experiments_of, parse_forced, restore
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.store import Store


def check_forced(spec: PipelineSpec, pairs: Sequence[str]) -> dict[str, str]:
    """``--variant NAME=VALUE`` options, checked before anything is stored (one-line errors)."""
    return parse_forced(pairs, experiments_of(spec.experiments), spec.name) if pairs else {}


def assign_run(
    store: Store, spec: PipelineSpec, run_id: str, forced: dict[str, str] | None = None
) -> list[Assignment]:
    """The run's variants: those stored already, the rest assigned now (and stored)."""
    experiments = experiments_of(spec.experiments)
    if not experiments:
        return []
    table = store.experiments()
    stored = table.of_run(run_id)
    missing = [e for e in experiments if e.name not in stored]
    if missing:
        fresh = assign(missing, run_id, forced)
        table.record(run_id, [(a.experiment.name, a.variant.name, a.assigned_by) for a in fresh])
        stored = table.of_run(run_id)
    return restore(experiments, stored)
