"""Which stages run on Dask, checked before a run starts, and the executor a run uses for them.

A stage runs on Dask when it says ``executor: dask``, or when it runs an agent whose
orchestrate.yaml entry says ``executor: dask`` and the stage does not say
``executor: local``. The scheduler's address comes from ``Settings.dask_scheduler``
(``ORCHESTRATE_DASK_SCHEDULER`` > orchestrate.yaml ``dask: {scheduler: ...}``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import UsageError, WorkspaceError
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec, StageKind, StageSpec

if TYPE_CHECKING:
    from orchestrate.engine.config import Executor
    from orchestrate.engine.dask_executor import ByStage

DASK = "dask"
RUNNABLE = (StageKind.RUN, StageKind.AGENT)  # a command to run; python and uses run in this process


def dask_agents(config: Mapping[str, Any]) -> frozenset[str]:
    """Agents whose orchestrate.yaml entry says ``executor: dask`` (the label is also their metrics executor)."""
    agents = config.get("agents") or {}
    if not isinstance(agents, Mapping):
        return frozenset()
    return frozenset(
        str(name)
        for name, entry in agents.items()
        if isinstance(entry, Mapping) and entry.get("executor") == DASK
    )


def on_dask(stage: StageSpec, agents: frozenset[str]) -> bool:
    if stage.executor is not None:
        return stage.executor == DASK
    return stage.agent is not None and stage.agent in agents


def dask_stages(settings: Settings, spec: PipelineSpec) -> frozenset[str]:
    agents = dask_agents(settings.config)
    return frozenset(s.name for s in spec.stages if on_dask(s, agents))


def check_pipeline(settings: Settings, spec: PipelineSpec) -> None:
    """Refuse, before the run exists, a dask stage that cannot run: no address, no distributed, wrong kind."""
    agents = dask_agents(settings.config)
    for i, stage in enumerate(spec.stages):
        if not on_dask(stage, agents):
            continue
        where = f"{spec.path}:{stage.line}: stages[{i}]" if stage.line else f"{spec.path}: stages[{i}]"
        how = (
            "executor: dask"
            if stage.executor
            else f"agent {stage.agent} (executor: dask in orchestrate.yaml)"
        )
        if stage.kind not in RUNNABLE:
            raise UsageError(
                f'{where}.executor: stage "{stage.name}" is a {stage.kind.value} stage; only run: and agent: '
                "stages can run on Dask",
                hint="remove executor: dask from it",
            )
        if not settings.dask_scheduler:
            raise WorkspaceError(
                f'{where}: stage "{stage.name}" runs on Dask ({how}) but no Dask scheduler is configured',
                hint="set ORCHESTRATE_DASK_SCHEDULER=tcp://HOST:8786, or add "
                "'dask: {scheduler: tcp://HOST:8786}' to orchestrate.yaml",
            )
        if importlib.util.find_spec("distributed") is None:
            raise WorkspaceError(
                f'{where}: stage "{stage.name}" runs on Dask but dask.distributed is not installed',
                hint="pip install 'orchestrate[dask]'",
            )


def executor_for(
    settings: Settings, spec: PipelineSpec, local: Executor, secrets: Mapping[str, str]
) -> ByStage | None:
    """The run's executor when some of its stages run on Dask (None: every stage is local)."""
    stages = dask_stages(settings, spec)
    if not stages:
        return None
    check_pipeline(settings, spec)
    from orchestrate.engine.dask_executor import ByStage, DaskExecutor

    assert settings.dask_scheduler is not None  # check_pipeline refused a dask stage without one
    remote = DaskExecutor(settings.dask_scheduler, str(settings.root), tuple(secrets.values()))
    return ByStage(local, remote, stages)
