"""``orchestrate worker``: one loop that starts whatever is due, woken by changes (DESIGN §9).

Each pass, in order:

1. approval deadlines: requests past their timeout get their ``on_timeout``;
2. runs a previous worker stopped at shutdown (SIGTERM after the grace): resumed;
3. runs whose approval gates are all decided and whose process is gone: continued;
4. orphaned runs (active in the store, no live process; also event runs never started): resumed;
5. due cron slots: claimed once, their runs created and started (queued when the worker is full);
6. queued runs, oldest first, as the pipelines' concurrency limits allow;
7. the periodic review, when ``review.auto_schedule: true`` and ``orchestrate review`` exists.

Several workers may share one store (on PostgreSQL, on many hosts: issue 13). Each run
they start is claimed first, so one worker starts it: queued runs by ``claim_queued``
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), runs whose process is gone (orphaned, or
decided at their gates) by ``take_over``, interrupted ones by marking them resumed; a run
on another host is orphaned once its heartbeat is ``DEAD_AFTER`` old.

Runs start as child processes (``children.py``), at most ``--max-runs`` at once. The loop
sleeps ``worker.active_poll`` while runs are active or queued and ``worker.idle_poll``
otherwise, never past the next cron slot or pending approval deadline, and wakes at once
on ``POST /wake``, on a change in ``pipelines.d/`` and on a
write to the store (watchfiles on the SQLite file; LISTEN/NOTIFY on PostgreSQL). SIGTERM (or Ctrl-C) stops taking work, gives the
active runs ``worker.grace`` to finish, then stops them resumably.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import OrchestrateError
from orchestrate.domain.records import RunSummary
from orchestrate.domain.status import RunStatus
from orchestrate.services.liveness import DEAD_AFTER, process_alive, this_host
from orchestrate.spec.model import PipelineSpec
from orchestrate.store.scheduling import Owner
from orchestrate.worker.children import Children
from orchestrate.worker.config import WorkerConfig
from orchestrate.worker.schedules import Schedule, claimer, schedules, tick

if TYPE_CHECKING:
    from orchestrate.settings import Settings

MIN_GAP = 0.05  # seconds between two passes, so that a burst of writes costs one pass
REVIEW_EVERY = 60.0  # seconds between two automatic reviews
MAX_CONTINUES = 3  # times the worker continues one run at its decided gates


class Worker:
    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        *,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = print,
    ) -> None:
        from orchestrate.store import open_store

        self.settings = settings
        self.config = config
        self.clock = clock  # the time schedules see (injectable); everything else uses real time
        self.log = log
        self.store = open_store(settings.store_location)
        self.scheduling = self.store.scheduling()
        self.id = f"{os.getpid()}@{this_host()}"
        self.children = Children(settings, self.scheduling, self.id, config.max_runs)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.started_at = time.time()
        self.last_tick: float | None = None
        self.loop_lag = (
            0.0  # how late the last pass started after it was due (a wake-up or the end of a sleep)
        )
        self.pass_seconds = 0.0  # how long the last pass took
        self._intended: float | None = None  # when the next pass is due to start
        self.passes = 0
        self.schedules: list[Schedule] = []
        self._versions: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._specs: dict[tuple[str, int], PipelineSpec] = {}
        self._last_review = 0.0
        self.review_started = 0  # runs the automatic review started (not children of this worker)
        self._continued: dict[tuple[str, str | None], int] = {}
        self.port: int | None = None

    # -- the loop -----------------------------------------------------------------------------

    def run_forever(self, serve_http: bool = True) -> list[str]:
        """Passes until SIGTERM/SIGINT; then the grace period. Returns the runs stopped at the end."""
        server = None
        if serve_http:
            from orchestrate.worker.http import serve

            server = serve(self, self.config.host, self.config.port)
            self.port = server.server_address[1]
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        watcher = threading.Thread(target=self._watch, name="watch", daemon=True)
        watcher.start()
        where = f" on http://{self.config.host}:{self.port}" if server else ""
        self.log(
            f"worker {self.id} started{where} (max {self.config.max_runs} runs; poll "
            f"{self.config.active_poll:g}s busy, {self.config.idle_poll:g}s idle)"
        )
        try:
            while not self.stopping.is_set():
                self.run_pass()
                if self.stopping.is_set():
                    break
                busy = len(self.children) > 0 or self.scheduling.queue_length() > 0
                pause = self._pause(self.config.active_poll if busy else self.config.idle_poll)
                slept_from = time.time()
                woken = self.wake.wait(pause)
                self.wake.clear()
                self._intended = (time.time() if woken else slept_from + pause) + MIN_GAP
                time.sleep(MIN_GAP)
            if self.children.live:
                self.log(f"stopping: {len(self.children)} active run(s) get {self.config.grace:g}s to finish")
            stopped = self.children.drain(self.config.grace)
            for run_id in stopped:
                self.log(f"stopped run {run_id}; the next worker resumes it")
            return stopped
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
            self.log("worker stopped")

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if not self.stopping.is_set():
            self.log(f"{signal.Signals(signum).name}: taking no more work")
        self.stopping.set()
        self.wake.set()

    def _watch(self) -> None:
        """Wake the loop when a pipeline file or the store changes (watchfiles; LISTEN on PostgreSQL)."""
        from watchfiles import watch

        pipelines = self.settings.pipelines_dir
        db = self.settings.store_location
        if isinstance(db, str) and self.config.watch_store:  # PostgreSQL: no file, LISTEN instead
            threading.Thread(target=self._listen, args=(db,), name="listen", daemon=True).start()
        store_file = db if isinstance(db, Path) and self.config.watch_store else None
        names = {store_file.name, f"{store_file.name}-wal"} if store_file else set()
        folders = [p for p in (pipelines, store_file.parent if store_file else None) if p and p.is_dir()]

        def wanted(_change: Any, path: str) -> bool:
            p = Path(path)
            return p.name in names or (p.parent == pipelines and p.suffix in (".yaml", ".yml"))

        try:
            for _changes in watch(
                *folders,
                watch_filter=wanted,
                debounce=50,
                stop_event=self.stopping,
                recursive=False,
                raise_interrupt=False,
            ):
                self.wake.set()
        except Exception as e:  # no inotify here: polling alone still works
            self.log(f"watching files failed ({e}); relying on polling and POST /wake")

    def _listen(self, url: str) -> None:
        """Wake the loop after each write to a PostgreSQL store (LISTEN/NOTIFY)."""
        from orchestrate.store.pg import listen

        try:
            listen(url, self.stopping, self.wake.set)
        except Exception as e:  # the connection dropped: polling and POST /wake still work
            if not self.stopping.is_set():
                self.log(f"listening to the store failed ({e}); relying on polling and POST /wake")

    def _pause(self, poll: float) -> float:
        """How long to sleep: ``poll``, or less when an approval deadline or a cron slot comes sooner."""
        from orchestrate.worker.schedules import next_deadline, next_slot

        waits = [poll]
        now = self.clock()  # cron slots follow the schedules' clock, approval deadlines the real one
        slot = next_slot(self.schedules, now)
        if slot is not None:
            waits.append(slot - now)
        deadline = next_deadline(self.store, time.time())
        if deadline is not None:
            waits.append(deadline - time.time())
        return max(0.0, min(waits))

    def run_pass(self) -> None:
        """One pass over everything that may be due (``--once`` runs exactly this)."""
        if self._intended is not None:  # how late this pass starts after the moment it was meant to
            self.loop_lag = max(0.0, time.time() - self._intended)
        started = time.monotonic()
        for child, code in self.children.reap():
            self.log(f"run {child.run_id} process exited ({_exit(code)})")
        steps: list[tuple[str, Callable[[], None]]] = [
            ("pipelines", self._reload),
            ("approval timeouts", self._expire_approvals),
        ]
        if not self.stopping.is_set():
            steps += [
                ("interrupted runs", self._interrupted),
                ("approved runs", self._approved),
                ("orphaned runs", self._orphaned),
                ("schedules", self._schedules),
                ("queue", self._queue),
                ("review", self._review),
            ]
        for name, step in steps:
            try:
                step()
            except OrchestrateError as e:
                self.log(f"{name}: {e.message}")
            except Exception as e:  # one failing step must not stop the others, nor the worker
                self.log(f"{name}: internal error: {type(e).__name__}: {e}")
        self.passes += 1
        self.last_tick = time.time()
        self.pass_seconds = time.monotonic() - started

    # -- the steps ----------------------------------------------------------------------------

    def _reload(self) -> None:
        """pipelines.d/ as it is now: new versions registered; an invalid file reported once, its last valid version kept."""
        from orchestrate.services import registry

        rows = registry.sync(self.settings, self.store)
        for row in rows:
            key = row.path or row.name
            if row.error:
                if self._errors.get(key) != row.error:
                    kept = f"keeping version {row.version}" if row.version else "no valid version to keep"
                    self.log(f"invalid definition: {row.error}; {kept}")
                    self._errors[key] = row.error
                continue
            self._errors.pop(key, None)
            if row.version is not None and row.path is not None:
                before = self._versions.get(row.name)
                if before is not None and before != row.version:
                    self.log(f"reloaded {row.path}: {row.name} version {row.version}")
                self._versions[row.name] = row.version
        self.schedules = schedules(rows)

    def _expire_approvals(self) -> None:
        from orchestrate.services.approvals import expire_due

        expire_due(self.settings, self.store)

    def _start(self, run_id: str, reason: str, launch_id: int | None = None) -> None:
        child = self.children.start(run_id, reason, launch_id)
        self.log(f"started run {run_id} ({reason}, pid {child.proc.pid})")

    def _take_over(self, run: RunSummary, reason: str) -> None:
        """Start a run whose process is gone, if no other worker takes it first (``take_over``)."""
        seen = Owner(run.pid, run.host, run.heartbeat_at, run.status.value)
        launch = self.scheduling.take_over(run.id, seen, time.time(), self.id, reason, DEAD_AFTER)
        if launch is not None:
            self._start(run.id, reason, launch)

    def _interrupted(self) -> None:
        for run_id in self.scheduling.interrupted_runs():
            if not self.children.has_capacity():
                return
            if run_id in self.children:
                continue
            try:
                state = self.store.run_state(run_id)
            except OrchestrateError:  # deleted since (gc)
                self.scheduling.resumed(run_id, time.time())
                continue
            if not self.scheduling.resumed(run_id, time.time()):
                continue  # another worker resumed it first
            if state.status is RunStatus.CANCELLED and (state.reason or "").startswith("cancelled by SIG"):
                self._start(run_id, "interrupted")

    def _approved(self) -> None:
        for run in self.scheduling.decided_waiting():
            if not self.children.has_capacity():
                return
            if run.id in self.children or process_alive(run.pid, run.host, run.heartbeat_at):
                continue  # its own process goes on by itself
            gate = (run.id, self.scheduling.last_request(run.id))
            tries = self._continued.get(gate, 0)
            if tries >= MAX_CONTINUES:  # it keeps stopping at the same decided gate: do not feed a loop
                continue
            if tries == MAX_CONTINUES - 1:
                self.log(f"run {run.id}: continued {MAX_CONTINUES} times at the same gate; leaving it")
            self._continued[gate] = tries + 1
            self._take_over(run, "approved")

    def _orphaned(self) -> None:
        from orchestrate.services.control import orphaned

        for run in self.store.active_runs():
            if run.id in self.children or run.parent_run_id is not None:
                continue  # a child run is its parent's business: the parent's stage re-runs it
            if not orphaned(run):
                continue
            if not self.children.has_capacity():
                return
            never_started = run.pid is None and (run.triggered_by or "").startswith("event:")
            self._take_over(run, "event" if never_started else "orphaned")

    def _schedules(self) -> None:
        fired = tick(
            self.settings,
            self.store,
            self.schedules,
            self.clock(),
            claimer("worker"),
            self._start,
            self.children.has_capacity,
        )
        for f in fired:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.slot_at))
            self.log(f"schedule {f.schedule.pipeline} [{f.schedule.key}] slot {when}: {f.outcome}")

    def _spec(self, pipeline: str, version: int) -> PipelineSpec | None:
        key = (pipeline, version)
        if key not in self._specs:
            info = self.store.version(pipeline, version)
            if info is None:
                return None
            self._specs[key] = PipelineSpec.from_dict(json.loads(info.compiled))
        return self._specs[key]

    def _queue(self) -> None:
        """Queued runs, oldest first: claimed in one go, or one by one under a concurrency limit.

        Runs with no limit are claimed together (``claim_queued``: on PostgreSQL, rows locked
        with SKIP LOCKED, so several workers take different runs without waiting on one
        another); a limited pipeline's runs are dequeued one at a time, each after counting
        the runs that hold its slots.
        """
        from orchestrate.services.concurrency import Policy

        free = self.children.free()
        if free <= 0:
            return
        queued = self.scheduling.queued()
        limits: dict[tuple[str, int], int | None] = {}
        for run in queued:
            key = (run.pipeline, run.version)
            if key not in limits:
                spec = self._spec(run.pipeline, run.version)
                policy = Policy.of(spec.concurrency if spec else None)
                limits[key] = policy.limit if policy else None
        limited = [run for run in queued if limits[(run.pipeline, run.version)] is not None]
        if len(limited) < len(queued):

            def unlimited(pipeline: str, version: int) -> bool:
                # a run queued since the snapshot above is left to the next pass
                return (pipeline, version) in limits and limits[(pipeline, version)] is None

            for run_id in self.scheduling.claim_queued(free, time.time(), unlimited, free + len(limited)):
                self._start(run_id, "queued")
        for run in limited:
            if not self.children.has_capacity():
                return
            limit = limits[(run.pipeline, run.version)]
            if self.scheduling.dequeue(run.id, time.time(), run.pipeline, limit):
                self._start(run.id, "queued")

    def _review(self) -> None:
        """``review.auto_schedule: true``: ``orchestrate review --apply`` by itself, once a minute at most.

        The review keeps its own cool-down per finding, so a finding schedules its pipeline once.
        """
        config = self.settings.config.get("review") or {}
        if not isinstance(config, dict) or not config.get("auto_schedule"):
            return
        if time.time() - self._last_review < REVIEW_EVERY:
            return
        self._last_review = time.time()
        from orchestrate.review.service import auto_schedule

        for outcome in auto_schedule(self.settings, self.store):
            if outcome.action is not None:
                self.log(f"review: {outcome.finding.kind} → scheduled {outcome.pipeline}")
                if outcome.action.run_id is not None and outcome.action.error is None:
                    self.review_started += 1

    # -- what /health and /metrics report ------------------------------------------------------

    def health(self) -> dict[str, Any]:
        from orchestrate import __version__

        tick_at = self.last_tick
        return {
            "status": "stopping" if self.stopping.is_set() else "ok",
            "version": __version__,
            "worker": self.id,
            "active_runs": len(self.children.live),
            "runs": sorted(self.children.live),
            "max_runs": self.config.max_runs,
            "queue_length": self.scheduling.queue_length(),
            "last_tick": None
            if tick_at is None
            else time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(tick_at)),
            "last_tick_at": tick_at,
            "loop_lag_seconds": round(self.loop_lag, 6),
            "pass_seconds": round(self.pass_seconds, 6),
            "passes": self.passes,
            "schedules": len(self.schedules),
            "uptime_seconds": round(time.time() - self.started_at, 3),
        }

    def request_wake(self) -> None:
        self.wake.set()

    # -- for ``schedule tick``: the same steps, one at a time ------------------------------------

    def start(self, run_id: str, reason: str) -> None:
        """Start a stored run as this worker's child (``tick`` starts a slot's run with it)."""
        self._start(run_id, reason)

    def start_queued(self) -> list[str]:
        """The queue step alone; the runs it started."""
        before = set(self.children.live)
        self._queue()
        return [run_id for run_id in self.children.live if run_id not in before]


def _exit(code: int) -> str:
    if code == 0:
        return "succeeded"
    if code == 3:
        return "waiting for approval"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"
