"""The plan of a run without running it (``pipeline run --dry-run``): levels and resolved commands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrate.domain.records import EventInfo
from orchestrate.engine.process import command_argv, display_argv
from orchestrate.graph import Dag
from orchestrate.spec.interpolate import interpolate
from orchestrate.spec.model import PipelineSpec
from orchestrate.spec.when import WhenContext, evaluate


@dataclass(frozen=True)
class PlannedStage:
    name: str
    level: int
    needs: tuple[str, ...]
    kind: str
    command: str
    timeout: float | None
    retries: int
    on_failure: str
    optional: bool
    environment: str | None
    skip: str | None = None  # why its when: would skip it (None: it would run)


@dataclass(frozen=True)
class Plan:
    pipeline: str
    max_parallel: int
    levels: tuple[tuple[PlannedStage, ...], ...]
    critical_path: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "pipeline": self.pipeline,
            "max_parallel": self.max_parallel,
            "critical_path": list(self.critical_path),
            "levels": [[s.__dict__ | {"needs": list(s.needs)} for s in level] for level in self.levels],
        }


def _with_matrix(
    lookup: Callable[[str], str | None], values: Mapping[str, str]
) -> Callable[[str], str | None]:
    def matrix(name: str) -> str | None:
        if name.startswith("matrix.") and name.removeprefix("matrix.") in values:
            return values[name.removeprefix("matrix.")]
        return lookup(name)

    return matrix


def _plan_lookup(variables: Mapping[str, str], event: EventInfo | None) -> Callable[[str], str | None]:
    def lookup(name: str) -> str | None:
        if name in variables:
            return variables[name]
        if event is not None and name.startswith("event."):
            return event.lookup(name) or f"<{name}>"
        if name == "run.id":
            return "<run id>"
        if name.startswith("stages."):
            return f"<{name.removeprefix('stages.')}>"
        return f"<{name}>"

    return lookup


def make_plan(
    spec: PipelineSpec,
    variables: Mapping[str, str],
    max_parallel: int,
    default_timeout: float | None,
    event: EventInfo | None = None,
) -> Plan:
    """Levels and commands; with ``event``, what each stage's ``when`` would decide for it."""
    dag = Dag.from_spec(spec)
    lookup = _plan_lookup(variables, event)
    ctx = WhenContext(
        branch=event.branch if event else None,
        changed_files=event.changed_files if event else None,
        labels=event.labels if event else (),
        variables=variables,
    )
    levels: list[tuple[PlannedStage, ...]] = []
    for depth, names in enumerate(dag.levels()):
        row = []
        for name in names:
            s = spec.stage(name)
            stage_lookup = _with_matrix(lookup, s.matrix_values)
            skip = None
            if s.when is not None:
                decision = evaluate(s.when, ctx)
                skip = None if decision.run else decision.reason
            if s.run is not None:
                command = display_argv(command_argv(interpolate(s.run, stage_lookup, shell=True)))
            elif s.agent is not None:
                command = f"agent {s.agent}: {interpolate(s.task or '', stage_lookup, shell=False)}"
            elif s.python is not None:
                command = f"python {s.python}"
            elif s.uses is not None:
                command = f"pipeline {s.uses}"
            else:
                command = "approval gate"
            row.append(
                PlannedStage(
                    name=name,
                    level=depth,
                    needs=s.needs,
                    kind=s.kind.value,
                    command=command,
                    timeout=s.timeout or default_timeout,
                    retries=s.retry.max,
                    on_failure=s.on_failure.value,
                    optional=s.optional,
                    environment=s.environment,
                    skip=skip,
                )
            )
        levels.append(tuple(row))
    return Plan(spec.name, max_parallel, tuple(levels), tuple(dag.critical_path()))
