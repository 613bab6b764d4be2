"""Cron schedules: which slots are due, claiming them once, and the runs they start.

A schedule is one ``cron:`` trigger of an enabled pipeline. Its slots count from the
last slot that fired (or, for a schedule never seen before, from when it was first
seen: a new schedule waits for its next slot). After downtime the missed slots fire
once (``catchup: false``, the default: only the newest) or each (``catchup: true``, at
most ``spec.cron.MAX_CATCHUP``). A slot is claimed in the same transaction that creates
its run, under a unique key: two workers, a worker and ``schedule tick``, or a restart
cannot fire it twice.

Only slots that have come are recorded. A clock set in the future (``schedule tick --now``
or ``ORCHESTRATE_NOW`` later than the real time) is a rehearsal: the slots it finds due
are reported as "would fire" and nothing is claimed or started, so a rehearsal never
moves the real schedule forward. A clock set in the past fires those past slots for real.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrate.domain.errors import FeatureNotAvailable
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.status import RunStatus
from orchestrate.services.liveness import this_host
from orchestrate.spec import cron
from orchestrate.spec.model import PipelineSpec, TriggerSpec

if TYPE_CHECKING:
    from orchestrate.services.registry import Listed
    from orchestrate.settings import Settings
    from orchestrate.store import Store


@dataclass(frozen=True)
class Schedule:
    pipeline: str
    trigger: TriggerSpec
    key: str  # cron.key: how the store names it
    spec: PipelineSpec  # the current valid definition (the last valid one if the file is broken)
    version: int
    enabled: bool

    @property
    def expr(self) -> str:
        return self.trigger.cron or ""


@dataclass(frozen=True)
class Fired:
    schedule: Schedule
    slot_at: float
    run_id: str | None  # None: another process claimed it first, or it could not run
    outcome: str  # started | queued | skipped | claimed elsewhere | not runnable: ...


REHEARSED = "would fire (rehearsal: the clock is ahead of the real time; nothing recorded)"
AHEAD = 1.0  # seconds: a clock this far past the real time is a rehearsal


def is_rehearsal(now: float, real_now: float | None = None) -> bool:
    """Whether the clock ``now`` is ahead of the real time (an injected clock in the future)."""
    return now > (time.time() if real_now is None else real_now) + AHEAD


def schedules(rows: list[Listed]) -> list[Schedule]:
    """Every cron trigger of the registry's pipelines (files in pipelines.d/, valid or last valid)."""
    out: list[Schedule] = []
    for row in rows:
        if row.spec is None or row.version is None or row.path is None:
            continue  # no valid version, or the file is gone: nothing to schedule
        enabled = row.info is None or row.info.enabled
        for trigger in row.spec.triggers:
            if trigger.cron:
                key = cron.key(trigger.cron, trigger.tz)
                out.append(Schedule(row.name, trigger, key, row.spec, row.version, enabled))
    return out


def claimer(kind: str) -> str:
    return f"{kind} {os.getpid()}@{this_host()}"


def tick(
    settings: Settings,
    store: Store,
    found: list[Schedule],
    now: float,
    claimed_by: str,
    start: Callable[[str, str], None],
    has_capacity: Callable[[], bool] = lambda: True,
) -> list[Fired]:
    """One scheduling pass: claim each due slot, create its run, and start (or queue) it."""
    from orchestrate.services.concurrency import Decision, admit
    from orchestrate.services.definitions import check_runnable
    from orchestrate.store.scheduling import NewRun

    scheduling = store.scheduling()
    fired: list[Fired] = []
    real_now = time.time()
    rehearsal = is_rehearsal(now, real_now)
    for schedule in found:
        if not schedule.enabled:
            continue
        # first seen: the real time in a rehearsal, so that it records nothing from the future
        anchor = scheduling.schedule_anchor(schedule.pipeline, schedule.key, real_now if rehearsal else now)
        limit = cron.MAX_CATCHUP if schedule.trigger.catchup else 1
        for slot in cron.due(schedule.expr, schedule.trigger.tz, anchor, now, limit):
            if rehearsal and slot > real_now:
                fired.append(Fired(schedule, slot, None, REHEARSED))
                continue
            spec = schedule.spec
            try:
                check_runnable(spec)
            except FeatureNotAvailable as e:
                scheduling.claim_empty_slot(spec.name, schedule.key, slot, now, claimed_by, e.message)
                fired.append(Fired(schedule, slot, None, f"not runnable: {e.message}"))
                continue
            run = NewRun(
                run_id=new_run_id(),
                pipeline=spec.name,
                version=schedule.version,
                digest=spec.digest,
                variables=dict(spec.variables),
                stage_names=spec.stage_names,
                created_at=time.time(),  # the real time, even under an injected clock
                triggered_by=f"cron:{schedule.key}",
                started_by=settings.user,
            )
            if not scheduling.claim_slot(schedule.key, slot, claimed_by, run):
                fired.append(Fired(schedule, slot, None, "claimed elsewhere"))
                continue
            admission = admit(store, run.run_id, spec.name, spec.concurrency)
            if admission.decision is Decision.START:
                if has_capacity():
                    start(run.run_id, "scheduled")
                    outcome = "started"
                else:  # the worker is full: the queue holds it until a run finishes
                    scheduling.set_status(run.run_id, RunStatus.QUEUED, RunStatus.PENDING)
                    outcome = "queued (worker at --max-runs)"
            else:
                outcome = admission.message
            fired.append(Fired(schedule, slot, run.run_id, outcome))
    return fired


@dataclass(frozen=True)
class Upcoming:
    schedule: Schedule
    next_at: list[float]
    last_slot: float | None


def upcoming(store: Store, found: list[Schedule], now: float, count: int = 1) -> list[Upcoming]:
    """Each schedule's next fire times after ``now`` and the last slot that fired."""
    scheduling = store.scheduling()
    return [
        Upcoming(
            s,
            cron.next_times(s.expr, s.trigger.tz, now, count),
            scheduling.last_slot(s.pipeline, s.key),
        )
        for s in found
    ]


def next_slot(found: list[Schedule], now: float) -> float | None:
    """The earliest slot of the enabled schedules strictly after ``now`` (the worker sleeps no longer)."""
    times = [cron.next_times(s.expr, s.trigger.tz, now)[0] for s in found if s.enabled]
    return min(times, default=None)


def next_deadline(store: Store, now: float) -> float | None:
    """The earliest deadline of a pending approval request still ahead of ``now``."""
    deadlines = [
        r.deadline
        for r in store.approval_requests(pending_only=True, limit=500)
        if r.deadline is not None and r.deadline > now
    ]
    return min(deadlines, default=None)
