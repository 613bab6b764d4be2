"""Starting a run: definition → stored run → scheduling loop, reporting to the store and a view."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrate.domain.errors import UsageError
from orchestrate.domain.events import EventSink, FanOut
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.state import RunState
from orchestrate.engine.scheduler import RunConfig, RunResult, Scheduler
from orchestrate.services.definitions import check_runnable, display_path, find_definition, load_cached
from orchestrate.settings import Settings, max_parallel_for
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.store import Store


def parse_vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE", hint="e.g. --var environment=prod")
        out[key.strip()] = value
    return out


def merge_variables(spec: PipelineSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    unknown = [k for k in overrides if k not in spec.variables]
    if unknown:
        declared = ", ".join(spec.variables) or "none"
        raise UsageError(
            f"--var {unknown[0]}: pipeline {spec.name} has no variable {unknown[0]!r} (declared: {declared})",
            hint=f"declare it under variables: in {spec.path}",
        )
    return {**spec.variables, **overrides}


@dataclass(frozen=True)
class StartedRun:
    run_id: str
    spec: PipelineSpec
    initial: RunState
    config: RunConfig


def prepare(
    settings: Settings,
    ref: str,
    overrides: Mapping[str, str],
    max_parallel: int | None,
    env: Mapping[str, str],
) -> tuple[StartedRun, Store]:
    """Validate, register the definition and store a new pending run. Returns the run and its store."""
    from orchestrate.store import open_store

    path = find_definition(settings, ref)
    store = open_store(settings.db_path)
    spec, version = load_cached(path, display_path(path, settings.root), store)
    check_runnable(spec)
    variables = merge_variables(spec, overrides)
    run_id = new_run_id()
    now = time.time()
    store.create_run(run_id, spec.name, version, spec.digest, variables, spec.stage_names, now)
    config = RunConfig(
        run_id=run_id,
        spec=spec,
        log_dir=str(settings.logs_dir / run_id),
        workspace=str(settings.root),
        variables=variables,
        base_env=dict(env),
        max_parallel=max_parallel_for(max_parallel, settings, spec.max_parallel),
        default_timeout=spec.default_timeout or settings.default_timeout,
    )
    initial = RunState.new(run_id, spec.name, spec.stage_names, now, variables)
    return StartedRun(run_id, spec, initial, config), store


def execute(started: StartedRun, store: Store, view: EventSink, root: Path) -> RunResult:
    """Run the scheduling loop to the end; the store hears each event before the view does."""
    import anyio

    writer = store.writer(started.run_id)
    sink = FanOut([writer, view])
    os.chdir(root)  # stages run in the workspace
    scheduler = Scheduler(started.config, sink)
    result: RunResult = anyio.run(scheduler.run)
    return result
