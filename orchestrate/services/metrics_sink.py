"""Every finished stage attempt becomes a task-metric row (DESIGN §8; issue 8).

A ``measure`` for the store writer (``Store.writer(run, measure)``), which stores the
row in the same transaction as the attempt's end: it remembers when each attempt
started and, when it finishes, builds duration, status, and the usage the stage reported in
its reserved outputs (model, tokens, cost, prompt variant, skill version). The model
is the configured one (the run's model variant for the stage, else the agent's ``model:``)
when there is one, not the exact id the agent reported (``claude-sonnet-4-5-…``, kept in
the attempt's outputs): that is what a budget forecast knows before the stage runs, and
what ``metrics --by model`` and model experiments compare; a stage with no configured
model records what it reported. The
task type is the stage (a matrix instance counts as its group); the executor is the
agent's label, or ``python`` / ``subprocess``. A value an agent reports that is not
a number is left out rather than failing the run. The prompt variant is what the
stage reported, else the run's ``experiment=variant`` pairs (comma-separated, sorted)
of the experiments that apply to the stage (issue 10); the skill version is what the stage
reported, else the skill (path) of the run's variant for the stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrate.domain.errors import OrchestrateError
from orchestrate.domain.events import RunEvent, StageFinished, StageStarted
from orchestrate.domain.experiments import Assignment, prompt_variant, stage_model, stage_skill
from orchestrate.domain.metrics import TaskMetric, attempt_task_id, metric_status
from orchestrate.engine.config import AgentConfig
from orchestrate.spec.model import PipelineSpec


def _number(value: str | None) -> float | None:
    """A reported number, or None for a missing, malformed or negative one."""
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


class Measure:
    def __init__(
        self,
        spec: PipelineSpec,
        agents: Mapping[str, AgentConfig],
        variants: Sequence[Assignment] = (),
    ) -> None:
        self.pipeline = spec.name
        self.specs = {s.name: s for s in spec.stages}
        self.agents = agents
        self.variants = tuple(variants)  # the run's: its experiments' name=variant pairs by default
        self.started: dict[tuple[str, int], float] = {}

    def __call__(self, event: RunEvent) -> TaskMetric | None:
        if isinstance(event, StageStarted):
            self.started[(event.stage, event.attempt)] = event.at
            return None
        if not isinstance(event, StageFinished):
            return None
        start = self.started.pop((event.stage, event.attempt), None)
        status = metric_status(
            event.status, timed_out=bool(event.error and event.error.startswith("timed out"))
        )
        if start is None or status is None:
            return None
        spec = self.specs.get(event.stage)
        agent = self.agents.get(spec.agent) if spec and spec.agent else None
        out = event.outputs
        task_type = (spec.group or spec.name) if spec else event.stage
        tokens_in, tokens_out, cost = (
            _number(out.get("input_tokens")),
            _number(out.get("output_tokens")),
            _number(out.get("cost_usd")),
        )
        try:
            return TaskMetric(
                task_id=attempt_task_id(event.run_id, event.stage, event.attempt),
                task_type=task_type,
                duration_seconds=max(0.0, event.at - start),
                status=status,
                created_at=event.at,
                # The configured model (the run's variant for the stage, else the agent's), known
                # before the stage runs, so budget forecasts find it; else what the stage reported.
                model=stage_model(self.variants, task_type)
                or (agent.model if agent else None)
                or out.get("model"),
                executor=agent.executor if agent else ("python" if spec and spec.python else "subprocess"),
                prompt_variant=out.get("prompt_variant") or prompt_variant(self.variants, task_type),
                skill_version=out.get("skill_version") or stage_skill(self.variants, task_type),
                pipeline=self.pipeline,
                run_id=event.run_id,
                stage=event.stage,
                attempt=event.attempt,
                input_tokens=None if tokens_in is None else int(tokens_in),
                output_tokens=None if tokens_out is None else int(tokens_out),
                cost_usd=cost,
            )
        except OrchestrateError:
            return None  # measuring never fails the work
