"""Per-pipeline concurrency (issue 11): ``concurrency: {limit: 1, on_conflict: queue}``.

``concurrency:`` present means a limit: ``limit`` defaults to 1 and ``on_conflict`` to
``queue``, so ``concurrency: {}`` and ``concurrency: {on_conflict: skip}`` both allow one
active run. Without ``concurrency:`` there is no limit.

Applied when a new run is about to start, whatever started it (a manual run, the queue,
a schedule, an event). Runs that are pending, running or waiting at a gate hold a slot;
queued runs wait for one. On conflict:

- ``queue`` (default): the new run waits (status ``queued``); the worker starts it when a
  slot frees, oldest first.
- ``cancel-older`` (also ``cancel``): the oldest active runs are asked to cancel (they stop
  within a second, as with ``pipeline cancel``) and the new run starts at once.
- ``skip``: the new run does not start; it is recorded as cancelled with the reason.

The decision and the queueing are one store transaction, so two runs starting at the same
moment cannot both take the last slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from orchestrate.domain.status import RunStatus

if TYPE_CHECKING:
    from orchestrate.store import Store


class Decision(StrEnum):
    START = "start"
    QUEUED = "queued"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Policy:
    limit: int
    on_conflict: str  # queue | cancel-older | skip

    @classmethod
    def of(cls, concurrency: Mapping[str, Any] | None) -> Policy | None:
        if concurrency is None:  # no concurrency: key at all; {} is limit 1 (the defaults)
            return None
        mode = str(concurrency.get("on_conflict", "queue"))
        return cls(int(concurrency.get("limit", 1)), "cancel-older" if mode == "cancel" else mode)


@dataclass(frozen=True)
class Admission:
    decision: Decision
    message: str  # for the person or log that started it ("" when it simply starts)
    cancelled: tuple[str, ...] = ()  # older runs asked to stop (cancel-older)


def admit(store: Store, run_id: str, pipeline: str, concurrency: Mapping[str, Any] | None) -> Admission:
    """Decide whether the stored pending run ``run_id`` may start now, and apply the decision."""
    policy = Policy.of(concurrency)
    if policy is None:
        return Admission(Decision.START, "")
    scheduling = store.scheduling()
    holding, waiting = scheduling.admit(run_id, pipeline, policy.limit, policy.on_conflict == "queue")
    if len(holding) < policy.limit and not waiting:
        return Admission(Decision.START, "")
    active = ", ".join(holding) or "none"
    limit = f"concurrency limit {policy.limit} of {pipeline} reached (active: {active})"
    if len(holding) < policy.limit:
        limit = f"{waiting} earlier run(s) of {pipeline} are queued"
    if policy.on_conflict == "queue":
        return Admission(
            Decision.QUEUED, f"run {run_id} queued: {limit}; the worker starts it when a run finishes"
        )
    if policy.on_conflict == "skip":
        from orchestrate.services.control import close_dead_run

        close_dead_run(store, store.run_state(run_id), f"skipped: {limit}")
        return Admission(Decision.SKIPPED, f"run {run_id} skipped: {limit}")
    # cancel-older: the oldest go, until this run fits.
    doomed = tuple(holding[: len(holding) - policy.limit + 1])
    from orchestrate.services.control import close_dead_run, orphaned

    for old in doomed:
        by = f"run {run_id} (concurrency: cancel-older)"
        store.request_cancel(old, by)
        state = store.run_state(old)
        if orphaned(state):  # no process would ever see the request
            close_dead_run(store, state, f"cancelled by {by}")
    return Admission(
        Decision.START,
        f"cancelling older run{'s' if len(doomed) > 1 else ''} {', '.join(doomed)} (concurrency: cancel-older)",
        doomed,
    )


def queue(store: Store, run_id: str) -> None:
    """Put a pending run that nothing has started on the queue (``pipeline run --queue``)."""
    store.scheduling().set_status(run_id, RunStatus.QUEUED, RunStatus.PENDING)
