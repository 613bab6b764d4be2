"""What the worker and the schedules keep in the store (issue 11): slots, the queue, launches.

Each operation is one short transaction over ``sql.py`` statements. Claiming a cron slot
and creating its run happen in the same transaction, so a slot fires at most once (the
unique key on the slot) and never fires without its run existing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orchestrate.domain.approvals import RequestStatus
from orchestrate.domain.records import RunSummary
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import sql
from orchestrate.store.db import Database
from orchestrate.store.registry import run_summary
from orchestrate.store.writer import dumps

# The statuses that hold one of a pipeline's concurrency slots (queued runs wait for one).
HOLDING = (RunStatus.PENDING.value, RunStatus.RUNNING.value, RunStatus.WAITING_APPROVAL.value)


@dataclass(frozen=True)
class NewRun:
    """A run to create: what ``Store.create_run`` takes, plus its first status."""

    run_id: str
    pipeline: str
    version: int
    digest: str
    variables: Mapping[str, str]
    stage_names: Sequence[str]
    created_at: float
    triggered_by: str
    started_by: str | None
    status: RunStatus = RunStatus.PENDING


@dataclass(frozen=True)
class Owner:
    """Who holds a run, as a worker judged it before taking it over (``Scheduling.take_over``)."""

    pid: int | None
    host: str | None
    heartbeat_at: float | None
    status: str


@dataclass(frozen=True)
class SlotRecord:
    pipeline: str
    trigger: str
    slot_at: float
    claimed_at: float
    claimed_by: str
    run_id: str | None
    note: str | None


def _insert_run(conn: sqlite3.Connection, run: NewRun) -> None:
    conn.execute(
        sql.INSERT_RUN,
        (
            run.run_id,
            run.pipeline,
            run.version,
            run.digest,
            run.status.value,
            dumps(dict(run.variables)),
            run.created_at,
            run.triggered_by,
            None,
            run.started_by,
            None,
        ),
    )
    conn.executemany(
        sql.INSERT_STAGE,
        [(run.run_id, name, i, StageStatus.PENDING.value) for i, name in enumerate(run.stage_names)],
    )


class Scheduling:
    """Schedules, slots, the run queue and the worker's launches, over one store connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- schedules ---------------------------------------------------------------------------

    def schedule_anchor(self, pipeline: str, trigger: str, now: float) -> float:
        """The time after which this trigger's slots are due: its last fired slot, else when first seen."""
        with self._db.write() as conn:
            conn.execute(sql.INSERT_SCHEDULE, (pipeline, trigger, now))
            last = conn.execute(sql.LAST_SCHEDULE_SLOT, (pipeline, trigger)).fetchone()[0]
            if last is not None:
                return float(last)
            return float(conn.execute(sql.SELECT_SCHEDULE_SEEN, (pipeline, trigger)).fetchone()[0])

    def last_slot(self, pipeline: str, trigger: str) -> float | None:
        with self._db.read() as conn:
            last = conn.execute(sql.LAST_SCHEDULE_SLOT, (pipeline, trigger)).fetchone()[0]
        return None if last is None else float(last)

    def claim_slot(self, trigger: str, slot_at: float, claimed_by: str, run: NewRun) -> bool:
        """Claim the slot and create its run, atomically; False if another process claimed it first."""
        with self._db.write() as conn:
            claim = (run.pipeline, trigger, slot_at, run.created_at, claimed_by, run.run_id, None)
            if conn.execute(sql.CLAIM_SCHEDULE_SLOT, claim).rowcount != 1:
                return False
            _insert_run(conn, run)
            return True

    def claim_empty_slot(
        self, pipeline: str, trigger: str, slot_at: float, claimed_at: float, claimed_by: str, note: str
    ) -> bool:
        """A slot that fires without a run (the definition cannot run): claimed, with why."""
        with self._db.write() as conn:
            return (
                conn.execute(
                    sql.CLAIM_SCHEDULE_SLOT,
                    (pipeline, trigger, slot_at, claimed_at, claimed_by, None, note),
                ).rowcount
                == 1
            )

    def slots(self, pipeline: str, limit: int = 20) -> list[SlotRecord]:
        with self._db.read() as conn:
            return [SlotRecord(*row) for row in conn.execute(sql.SELECT_SCHEDULE_SLOTS, (pipeline, limit))]

    # -- the queue and concurrency ---------------------------------------------------------------

    def create_run(self, run: NewRun) -> None:
        with self._db.write() as conn:
            _insert_run(conn, run)

    def set_status(self, run_id: str, status: RunStatus, was: RunStatus) -> bool:
        with self._db.write() as conn:
            return conn.execute(sql.SET_RUN_STATUS, (status.value, run_id, was.value)).rowcount == 1

    def queued(self) -> list[RunSummary]:
        with self._db.read() as conn:
            return [run_summary(r) for r in conn.execute(sql.QUEUED_RUNS, (RunStatus.QUEUED.value,))]

    def holding(self, pipeline: str, run_id: str = "") -> list[str]:
        """The runs of ``pipeline`` (other than ``run_id``) holding a concurrency slot, oldest first."""
        with self._db.read() as conn:
            return [r for (r,) in conn.execute(sql.ACTIVE_RUNS_OF_PIPELINE, (pipeline, run_id, *HOLDING))]

    def admit(self, run_id: str, pipeline: str, limit: int, queue: bool) -> tuple[list[str], int]:
        """In one transaction: the runs holding a slot and those queued before this one.

        With ``queue``, this run is queued when no slot is free or others already wait.
        """
        with self._db.write() as conn:
            others = [r for (r,) in conn.execute(sql.ACTIVE_RUNS_OF_PIPELINE, (pipeline, run_id, *HOLDING))]
            waiting = 0
            if queue:
                waiting = int(
                    conn.execute(
                        sql.QUEUED_OF_PIPELINE, (pipeline, run_id, RunStatus.QUEUED.value)
                    ).fetchone()[0]
                )
                if len(others) >= limit or waiting:
                    conn.execute(
                        sql.SET_RUN_STATUS, (RunStatus.QUEUED.value, run_id, RunStatus.PENDING.value)
                    )
            return others, waiting

    def dequeue(self, run_id: str, now: float, pipeline: str, limit: int | None) -> bool:
        """Take a queued run off the queue (pending again) if a slot is free; once, whoever asks."""
        with self._db.write() as conn:
            if limit is not None:
                holding = conn.execute(sql.ACTIVE_RUNS_OF_PIPELINE, (pipeline, run_id, *HOLDING)).fetchall()
                if len(holding) >= limit:
                    return False
            changed = conn.execute(
                sql.DEQUEUE_RUN, (RunStatus.PENDING.value, now, run_id, RunStatus.QUEUED.value)
            ).rowcount
            return changed == 1

    def decided_waiting(self) -> list[RunSummary]:
        """Runs at an approval gate with no pending request left: decided, ready to go on."""
        with self._db.read() as conn:
            rows = conn.execute(
                sql.DECIDED_WAITING_RUNS, (RunStatus.WAITING_APPROVAL.value, RequestStatus.PENDING.value)
            )
            return [run_summary(r) for r in rows]

    def last_request(self, run_id: str) -> str | None:
        with self._db.read() as conn:
            row = conn.execute(sql.LAST_APPROVAL_OF_RUN, (run_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    # -- launches ---------------------------------------------------------------------------------

    def launched(self, run_id: str, reason: str, at: float, worker: str, child_pid: int | None) -> None:
        with self._db.write() as conn:
            conn.execute(sql.INSERT_WORKER_LAUNCH, (run_id, reason, at, worker, child_pid))

    def interrupted(self, run_id: str, worker: str, at: float) -> None:
        with self._db.write() as conn:
            conn.execute(sql.MARK_LAUNCH_INTERRUPTED, (at, run_id, worker))

    def interrupted_runs(self) -> list[str]:
        with self._db.read() as conn:
            return [r for (r,) in conn.execute(sql.INTERRUPTED_LAUNCHES)]

    def resumed(self, run_id: str, at: float) -> bool:
        """Mark the run's interrupted launches resumed; False when another worker did it first."""
        with self._db.write() as conn:
            return conn.execute(sql.MARK_LAUNCH_RESUMED, (at, run_id)).rowcount > 0

    # -- claims: several workers on one store (issue 13) ---------------------------------------
    #
    # Both claims run in ``db.claim()``: on SQLite an exclusive write transaction; on PostgreSQL a
    # transaction without the global write lock whose SELECT locks the rows it returns and skips
    # the rows another worker is claiming (FOR UPDATE SKIP LOCKED). So workers never wait for one
    # another there, and a row is claimed by one of them at most.

    def claim_queued(self, n: int, now: float, takes: Callable[[str, int], bool], window: int) -> list[str]:
        """Take up to ``n`` of the oldest queued runs off the queue, for this worker to start.

        ``takes(pipeline, version)`` says which runs this claim may take: those with no
        concurrency limit (a limit needs ``dequeue``, which counts the runs holding a slot
        under the global write lock). ``window``: how many of the oldest queued runs to look at.
        Each run taken is still a compare-and-swap on its status, as ``dequeue`` does.
        """
        taken: list[str] = []
        with self._db.claim() as conn:
            rows = conn.execute(
                sql.CLAIM_QUEUED_RUNS + self._db.ROW_LOCK, (RunStatus.QUEUED.value, max(window, n))
            ).fetchall()
            for run_id, pipeline, version in rows:
                if len(taken) >= n:
                    break
                if not takes(str(pipeline), int(version)):
                    continue
                changed = conn.execute(
                    sql.DEQUEUE_RUN, (RunStatus.PENDING.value, now, run_id, RunStatus.QUEUED.value)
                ).rowcount
                if changed == 1:
                    taken.append(str(run_id))
        return taken

    def take_over(
        self, run_id: str, seen: Owner, now: float, worker: str, reason: str, hold: float
    ) -> int | None:
        """Claim a run whose process is gone, for this worker to start again: the launch row's id.

        None when the run is not this worker's to take: another worker is claiming it this very
        moment (its row is locked), it changed since the worker judged it (``seen``: a process
        claimed it, or it ended), or a worker launched it after its last heartbeat less than
        ``hold`` seconds ago (that launch's process is still starting; after ``hold`` it is
        presumed lost, and the run may be taken again). The launch row written here is that
        mark, in the same transaction: two workers never both take one run.
        """
        with self._db.claim() as conn:
            row = conn.execute(sql.LOCK_RUN_OWNER + self._db.ROW_LOCK, (run_id,)).fetchone()
            if row is None:
                return None
            pid, host, beat, status = row
            now_owner = Owner(pid, host, None if beat is None else float(beat), str(status))
            if now_owner != seen:
                return None
            last = conn.execute(sql.LAST_LAUNCH_OF_RUN, (run_id,)).fetchone()[0]
            if last is not None and float(last) > (seen.heartbeat_at or 0.0) and now - float(last) < hold:
                return None
            return conn.execute(sql.INSERT_WORKER_LAUNCH, (run_id, reason, now, worker, None)).lastrowid

    def launch_started(self, launch_id: int, child_pid: int) -> None:
        """The process a ``take_over`` launch started."""
        with self._db.write() as conn:
            conn.execute(sql.SET_LAUNCH_CHILD, (child_pid, launch_id))

    # -- GET /metrics -----------------------------------------------------------------------------

    def gauges(self) -> tuple[list[tuple[str, str, int]], int, int]:
        """(runs by pipeline and status, queue length, pending approvals), from one snapshot."""
        with self._db.read() as conn:
            by_status = [(str(p), str(s), int(n)) for p, s, n in conn.execute(sql.RUNS_BY_PIPELINE_STATUS)]
            queued = int(conn.execute(sql.COUNT_RUNS_WITH_STATUS, (RunStatus.QUEUED.value,)).fetchone()[0])
            approvals = int(
                conn.execute(sql.COUNT_APPROVALS_WITH_STATUS, (RequestStatus.PENDING.value,)).fetchone()[0]
            )
        return by_status, queued, approvals

    def stage_durations(self) -> list[tuple[str, float]]:
        with self._db.read() as conn:
            return [(str(p), float(d)) for p, d in conn.execute(sql.STAGE_DURATIONS_BY_PIPELINE)]

    def queue_length(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(sql.COUNT_RUNS_WITH_STATUS, (RunStatus.QUEUED.value,)).fetchone()[0])
