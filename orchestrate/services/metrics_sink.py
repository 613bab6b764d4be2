"""Every finished stage attempt becomes a task-metric row (DESIGN §8; issue 8).

An event sink beside the store writer: it remembers when each attempt started and,
when it finishes, records duration, status, and the usage the stage reported in
its reserved outputs (model, tokens, cost, prompt variant, skill version). The
task type is the stage (a matrix instance counts as its group); the executor is the
agent's label, or ``python`` / ``subprocess``. A value an agent reports that is not
a number is left out rather than failing the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from orchestrate.domain.errors import OrchestrateError
from orchestrate.domain.events import RunEvent, StageFinished, StageStarted
from orchestrate.domain.metrics import TaskMetric, attempt_task_id, metric_status
from orchestrate.engine.config import AgentConfig
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.store import Store


def _number(value: str | None, kind: type) -> float | int | None:
    if value is None or value == "":
        return None
    try:
        number = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


class MetricsSink:
    def __init__(self, store: Store, spec: PipelineSpec, agents: Mapping[str, AgentConfig]) -> None:
        self.store = store
        self.pipeline = spec.name
        self.specs = {s.name: s for s in spec.stages}
        self.agents = agents
        self.started: dict[tuple[str, int], float] = {}

    def emit(self, event: RunEvent) -> None:
        if isinstance(event, StageStarted):
            self.started[(event.stage, event.attempt)] = event.at
        elif isinstance(event, StageFinished):
            start = self.started.pop((event.stage, event.attempt), None)
            status = metric_status(
                event.status, timed_out=bool(event.error and event.error.startswith("timed out"))
            )
            if start is None or status is None:
                return
            spec = self.specs.get(event.stage)
            agent = self.agents.get(spec.agent) if spec and spec.agent else None
            executor = agent.executor if agent else ("python" if spec and spec.python else "subprocess")
            out = event.outputs
            try:
                metric = TaskMetric(
                    task_id=attempt_task_id(event.run_id, event.stage, event.attempt),
                    task_type=(spec.group or spec.name) if spec else event.stage,
                    duration_seconds=max(0.0, event.at - start),
                    status=status,
                    created_at=event.at,
                    model=out.get("model") or (agent.model if agent else None),
                    executor=executor,
                    prompt_variant=out.get("prompt_variant"),
                    skill_version=out.get("skill_version"),
                    pipeline=self.pipeline,
                    run_id=event.run_id,
                    stage=event.stage,
                    attempt=event.attempt,
                    input_tokens=_number(out.get("input_tokens"), int),  # type: ignore[arg-type]
                    output_tokens=_number(out.get("output_tokens"), int),  # type: ignore[arg-type]
                    cost_usd=_number(out.get("cost_usd"), float),
                )
            except OrchestrateError:
                return  # measuring never fails the work
            self.store.record_metric(metric)
