"""Continuing, re-running and forking runs (DESIGN §3; issue 4).

resume RUN                 the same run: settled stages kept, the rest run again
resume RUN --from STAGE    ... and STAGE with everything downstream of it
resume --checkpoint FILE   a run moved from elsewhere: re-created in this store first
resume RUN --force         a new run from scratch, linked to RUN
fork RUN --from STAGE      a new run reusing RUN's results upstream of STAGE
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.state import RunState
from orchestrate.domain.status import STAGE_SATISFIED, RunStatus
from orchestrate.graph import Dag
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.store import Store


def _open(settings: Settings) -> Store:
    from orchestrate.store import open_store

    return open_store(settings.store_location)


def _stage(dag: Dag, run_id: str, name: str, option: str) -> str:
    if name not in dag.succs:
        close = difflib.get_close_matches(name, dag.order, n=1)
        hint = f'did you mean "{close[0]}"?' if close else f"stages: {', '.join(dag.order)}"
        raise NotFoundError(f'{option} {name}: run {run_id} has no stage "{name}"', hint=hint)
    return name


def prepare(
    settings: Settings, run_ref: str, from_stage: str | None, use_current: bool = False
) -> tuple[Store, RunState, frozenset[str], PipelineSpec]:
    """The run to continue, the stages to run again, and the definition to run them with."""
    from orchestrate.services.execution import run_spec

    store = _open(settings)
    state = store.run_state(store.resolve_run_id(run_ref))
    spec = run_spec(store, state)
    if state.status is RunStatus.SUCCEEDED:
        if from_stage is not None or use_current:
            raise UsageError(
                f"run {state.run_id} already succeeded; it is not re-opened",
                hint=f"re-run part of it as a new run: orchestrate pipeline fork {state.run_id} --from STAGE",
            )
        return store, state, frozenset(), spec
    if use_current:
        spec, state = _switch_definition(settings, store, state)
    dag = Dag.from_spec(spec)
    rerun: set[str] = set()
    for name, stage in state.stages.items():
        if stage.status not in STAGE_SATISFIED and name in dag.succs:
            rerun |= {name, *dag.descendants(name)}
    if from_stage is not None:
        _stage(dag, state.run_id, from_stage, "--from")
        rerun |= {from_stage, *dag.descendants(from_stage)}
    return store, state, frozenset(rerun), spec


def _switch_definition(settings: Settings, store: Store, state: RunState) -> tuple[PipelineSpec, RunState]:
    """--use-current-definition: the file as it is now, if every stage of the run is still in it."""
    from orchestrate.services.definitions import display_path, find_definition, load_cached

    path = find_definition(settings, state.pipeline)
    spec, version = load_cached(path, display_path(path, settings.root), store)
    missing = [name for name in state.stages if name not in spec.stage_names]
    if missing:
        raise UsageError(
            f"--use-current-definition: {path.name} no longer has stage(s) {', '.join(missing)} of run {state.run_id}",
            hint="resume with the run's own definition (drop the flag), or start a new run",
        )
    store.set_run_version(state.run_id, version, spec.digest)
    return spec, store.run_state(state.run_id)


def import_checkpoint(settings: Settings, path: Path) -> tuple[Store, RunState, PipelineSpec]:
    """Re-create the run of a checkpoint (from another machine) in this store."""
    from orchestrate.domain.errors import SpecError
    from orchestrate.spec.loader import load_pipeline_text
    from orchestrate.store.checkpoint import CheckpointError, read_checkpoint

    state, definition = read_checkpoint(path)
    try:
        spec = load_pipeline_text(definition.text, definition.path)
    except SpecError as e:
        raise CheckpointError(f"{path}: its definition does not validate here: {e.issues[0]}") from None
    store = _open(settings)
    try:
        store.resolve_run_id(state.run_id)
    except NotFoundError:
        pass
    else:
        raise UsageError(
            f"run {state.run_id} is already in this store",
            hint=f"resume it from the store: orchestrate pipeline resume {state.run_id}",
        )
    version = store.register_version(spec.name, spec.digest, spec.path, spec.text, json.dumps(spec.to_dict()))
    store.import_run(state, version, spec.digest)
    return store, store.run_state(state.run_id), spec


def new_run_from(
    settings: Settings,
    run_ref: str,
    *,
    from_stage: str | None,
    overrides: Mapping[str, str],
) -> tuple[Store, RunState, PipelineSpec]:
    """A new run of RUN's definition, linked to it; with ``from_stage``, RUN's results upstream of it are reused."""
    from orchestrate.services.execution import run_spec
    from orchestrate.services.runs import merge_variables

    store = _open(settings)
    old = store.run_state(store.resolve_run_id(run_ref))
    spec = run_spec(store, old)
    variables = {**old.variables, **merge_variables(spec, overrides)} if overrides else dict(old.variables)
    reused: list[str] = []
    if from_stage is not None:
        dag = Dag.from_spec(spec)
        _stage(dag, old.run_id, from_stage, "--from")
        again = {from_stage, *dag.descendants(from_stage)}
        reused = [name for name in dag.order if name not in again]
        unsettled = [name for name in reused if old.stages[name].status not in STAGE_SATISFIED]
        if unsettled:
            raise UsageError(
                f"--from {from_stage}: stage(s) {', '.join(unsettled)} upstream of it did not succeed in run {old.run_id}",
                hint=f"fork from one of them instead, e.g. --from {unsettled[0]}",
            )
    run_id = new_run_id()
    how = f"fork of {old.run_id} from {from_stage}" if from_stage else f"re-run of {old.run_id}"
    store.create_run(
        run_id,
        spec.name,
        old.version,
        spec.digest,
        variables,
        spec.stage_names,
        time.time(),
        trigger=how,
        parent_run_id=old.run_id,
        started_by=settings.user,
    )
    if reused:
        store.copy_stages(run_id, [old.stages[name] for name in reused], f"reused from run {old.run_id}")
    return store, store.run_state(run_id), spec
