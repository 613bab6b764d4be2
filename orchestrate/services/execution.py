"""Executing a stored run in this process: claim it, run the loop, watch for cancel requests.

A fresh run, a ``--detach``ed one (in its own background process) and a resumed
one all go through ``execute``: the run's stored definition is what runs, and
stages that already succeeded or were skipped are kept as they are.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrate.domain.errors import UsageError
from orchestrate.domain.events import EventSink, FanOut
from orchestrate.domain.state import RunState
from orchestrate.domain.status import RUN_TERMINAL, RunStatus, StageStatus
from orchestrate.engine.masking import Masker
from orchestrate.engine.process import kill_group, stage_processes
from orchestrate.engine.scheduler import RunConfig, RunResult, Scheduler, SubprocessExecutor
from orchestrate.services import budgets, dask_cluster, experiments, secrets
from orchestrate.services.agents import parse_agents
from orchestrate.services.approvals import StoreGate, approval_context
from orchestrate.services.liveness import HEARTBEAT_EVERY, process_alive, this_host
from orchestrate.services.metrics_sink import Measure
from orchestrate.services.runs import orchestrate_argv
from orchestrate.settings import Settings, max_parallel_for
from orchestrate.spec.model import PipelineSpec
from orchestrate.store.checkpoint import CheckpointWriter, Definition

if TYPE_CHECKING:
    from orchestrate.store import Store

CANCEL_POLL = 0.2  # seconds: a cancel from another terminal is noticed well within 1 s


def run_spec(store: Store, state: RunState) -> PipelineSpec:
    """The definition the run was started with (its stored snapshot, never the current file)."""
    info = store.version(state.pipeline, state.version)
    if info is None:  # a run always points at a registered version; a broken store does not
        raise UsageError(f"run {state.run_id}: its definition (version {state.version}) is missing")
    return PipelineSpec.from_dict(json.loads(info.compiled))


def claim(store: Store, state: RunState) -> None:
    """Make this process the run's owner, refusing while another live process owns it."""
    # A finished run's last owner wrote RunFinished as its last act: it is done with it.
    owned = state.status not in RUN_TERMINAL and state.pid != os.getpid()
    if owned and process_alive(state.pid, state.host, state.heartbeat_at):
        raise UsageError(
            f"run {state.run_id} is locked by a live process (pid {state.pid} on {state.host})",
            hint=f"watch it with: orchestrate pipeline status {state.run_id} --watch",
        )
    if not store.claim(state.run_id, (state.pid, state.host), os.getpid(), this_host()):
        raise UsageError(f"run {state.run_id} was just claimed by another process", hint="try again")


def _child_command(settings: Settings, run_id: str) -> Callable[[str, Mapping[str, str]], list[str]]:
    """``uses: NAME``: the child is a run of its own, in its own process, linked to this one."""

    def command(pipeline: str, variables: Mapping[str, str]) -> list[str]:
        argv = orchestrate_argv(settings, "pipeline", "run", pipeline)
        argv += ["--plain", "--parent-run", run_id]
        for key, value in variables.items():
            argv += ["--var", f"{key}={value}"]
        return argv

    return command


def _stop_leftovers(state: RunState) -> None:
    """Stages of a crashed process live in their own sessions and may still run: stop them first.

    The recorded process groups of running attempts, and on Linux every process whose
    environment says it is a stage of this run: that also finds a stage the crashed
    process spawned but did not live to record.
    """
    if state.pid is None or state.host != this_host():
        return
    for stage in state.stages.values():
        if stage.status is StageStatus.RUNNING and stage.attempts and stage.attempts[-1].pid:
            kill_group(stage.attempts[-1].pid)
    for pid in stage_processes(state.run_id):
        kill_group(pid)


async def _supervise(store: Store, run_id: str, scheduler: Scheduler) -> None:
    """Heartbeats for liveness, and cancel requests written by other processes."""
    last_beat = 0.0
    while True:
        request = store.cancel_request(run_id)
        if request is not None:
            scheduler.request_cancel(f"cancelled by {request[1]}")
            return
        now = time.time()
        if now - last_beat >= HEARTBEAT_EVERY:
            store.heartbeat(run_id, now)
            last_beat = now
        await anyio.sleep(CANCEL_POLL)


def execute(
    settings: Settings,
    store: Store,
    state: RunState,
    view: EventSink,
    *,
    max_parallel: int | None,
    env: Mapping[str, str],
    spec: PipelineSpec | None = None,
    reopen: bool = False,
    rerun: frozenset[str] = frozenset(),
    wait_for_approvals: bool = True,
) -> RunResult:
    """Run (or continue) a stored run to its end in this process.

    ``reopen`` lets a failed or cancelled run go on (resume); a finished run is refused otherwise.
    """
    if state.status is RunStatus.SUCCEEDED or (state.status in RUN_TERMINAL and not reopen):
        raise UsageError(f"run {state.run_id} already {state.status.value}")
    spec = spec or run_spec(store, state)
    claim(store, state)
    _stop_leftovers(state)
    if state.pid is not None:
        # A request addressed to an earlier process of this run is spent; one made before the
        # first process claimed it (a cancelled --detach start) still stands.
        store.clear_cancel(state.run_id)
    config = _config(settings, store, state, spec, env, max_parallel, rerun, wait_for_approvals)
    definition = Definition(spec.name, state.version, spec.digest, spec.path, spec.text)
    checkpoint = CheckpointWriter(settings.checkpoints_dir / state.run_id, state, definition)
    writer = store.writer(state.run_id, Measure(spec, config.agents, config.variants))
    local = SubprocessExecutor(masker=Masker(config.secrets.values()) if config.secrets else None)
    executor = dask_cluster.executor_for(settings, spec, local, config.secrets)  # None: no dask stage
    scheduler = Scheduler(config, FanOut([writer, checkpoint, view]), executor)
    os.chdir(settings.root)  # stages run in the workspace

    async def main() -> RunResult:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_supervise, store, state.run_id, scheduler)
            try:
                result = await scheduler.run()
            finally:
                if executor is not None:
                    await executor.aclose()
            tg.cancel_scope.cancel()
        return result

    try:
        return anyio.run(main)
    finally:
        checkpoint.close()


def rollback(
    settings: Settings,
    store: Store,
    run_ref: str,
    to: str | None,
    user: str,
    view_for: Any,
    env: Mapping[str, str],
) -> RunResult:
    """``pipeline rollback``: undo a finished run's succeeded stages, from ``to`` on, newest first."""
    state = store.run_state(store.resolve_run_id(run_ref))
    if state.status not in RUN_TERMINAL:
        raise UsageError(
            f"run {state.run_id} is {state.status.value}; only a finished run can be rolled back",
            hint=f"stop it first: orchestrate pipeline cancel {state.run_id}",
        )
    if any(s.status is StageStatus.ROLLED_BACK for s in state.stages.values()):
        raise UsageError(f"run {state.run_id} was already rolled back ({state.reason})")
    spec = run_spec(store, state)
    if to is not None and to not in spec.stage_names:
        raise UsageError(
            f'--to {to}: run {state.run_id} has no stage "{to}"',
            hint=f"stages: {', '.join(spec.stage_names)}",
        )
    claim(store, state)
    config = _config(settings, store, state, spec, env, None, frozenset(), False)
    definition = Definition(spec.name, state.version, spec.digest, spec.path, spec.text)
    checkpoint = CheckpointWriter(settings.checkpoints_dir / state.run_id, state, definition)
    scheduler = Scheduler(config, FanOut([store.writer(state.run_id), checkpoint, view_for(state)]))
    os.chdir(settings.root)
    try:
        return anyio.run(scheduler.rollback_only, to, user)
    finally:
        checkpoint.close()


def _config(
    settings: Settings,
    store: Store,
    state: RunState,
    spec: PipelineSpec,
    env: Mapping[str, str],
    max_parallel: int | None,
    rerun: frozenset[str],
    wait_for_approvals: bool,
) -> RunConfig:
    return RunConfig(
        run_id=state.run_id,
        spec=spec,
        log_dir=str(settings.logs_dir / state.run_id),
        workspace=str(settings.root),
        variables=dict(state.variables),
        base_env=dict(env),
        max_parallel=max_parallel_for(max_parallel, settings, spec.max_parallel),
        default_timeout=spec.default_timeout or settings.default_timeout,
        previous=state.stages,
        rerun=rerun,
        event=store.event(state.event_id) if state.event_id else None,
        child_command=_child_command(settings, state.run_id),
        secrets=secrets.resolve(settings, spec, env),
        gate=StoreGate(settings, store, state, wait=wait_for_approvals),
        agents=parse_agents(settings.config),
        approval=approval_context(store, state.run_id, spec.stage_names) if state.pid is not None else {},
        variants=tuple(experiments.assign_run(store, spec, state.run_id)),
        budget=budgets.guard(settings, store, state, spec),
    )


def log_dir(settings: Settings, run_id: str) -> Path:
    return settings.logs_dir / run_id
