"""Deciding what a resumed run runs again (DESIGN §3; issue 4)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.state import RunState
from orchestrate.domain.status import STAGE_SATISFIED, RunStatus
from orchestrate.graph import Dag
from orchestrate.settings import Settings

if TYPE_CHECKING:
    from orchestrate.store import Store


def prepare(
    settings: Settings, run_ref: str, from_stage: str | None
) -> tuple[Store, RunState, frozenset[str]]:
    """The run to continue and the stages to run again (a succeeded run has none)."""
    from orchestrate.services.execution import run_spec
    from orchestrate.store import open_store

    store = open_store(settings.db_path)
    state = store.run_state(store.resolve_run_id(run_ref))
    if state.status is RunStatus.SUCCEEDED:
        if from_stage is not None:
            raise UsageError(
                f"run {state.run_id} already succeeded; it is not re-opened",
                hint=f"start a new run: orchestrate pipeline run {state.pipeline}",
            )
        return store, state, frozenset()
    dag = Dag.from_spec(run_spec(store, state))
    rerun: set[str] = set()
    for name, stage in state.stages.items():
        if stage.status not in STAGE_SATISFIED and name in dag.succs:
            rerun |= {name, *dag.descendants(name)}
    if from_stage is not None:
        if from_stage not in dag.succs:
            close = difflib.get_close_matches(from_stage, dag.order, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f"stages: {', '.join(dag.order)}"
            raise NotFoundError(
                f'--from {from_stage}: run {state.run_id} has no stage "{from_stage}"', hint=hint
            )
        rerun |= {from_stage, *dag.descendants(from_stage)}
    return store, state, frozenset(rerun)
