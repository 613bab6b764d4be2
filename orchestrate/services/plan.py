"""The plan of a run without running it (``pipeline run --dry-run``): levels and resolved commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrate.engine.process import command_argv, display_argv
from orchestrate.graph import Dag
from orchestrate.spec.interpolate import interpolate
from orchestrate.spec.model import PipelineSpec


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


def _placeholder(variables: Mapping[str, str]) -> object:
    def lookup(name: str) -> str | None:
        if name in variables:
            return variables[name]
        if name == "run.id":
            return "<run id>"
        if name.startswith("stages."):
            return f"<{name.removeprefix('stages.')}>"
        return f"<{name}>"

    return lookup


def make_plan(
    spec: PipelineSpec, variables: Mapping[str, str], max_parallel: int, default_timeout: float | None
) -> Plan:
    dag = Dag.from_spec(spec)
    lookup = _placeholder(variables)
    levels: list[tuple[PlannedStage, ...]] = []
    for depth, names in enumerate(dag.levels()):
        row = []
        for name in names:
            s = spec.stage(name)
            if s.run is not None:
                command = display_argv(command_argv(interpolate(s.run, lookup, shell=True)))  # type: ignore[arg-type]
            elif s.agent is not None:
                command = f"agent {s.agent}: {interpolate(s.task or '', lookup, shell=False)}"  # type: ignore[arg-type]
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
                )
            )
        levels.append(tuple(row))
    return Plan(spec.name, max_parallel, tuple(levels), tuple(dag.critical_path()))
