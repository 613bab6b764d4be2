"""``orchestrate worker``: one loop that starts whatever is due, woken by changes (DESIGN §9).

Each pass, in order:

1. approval deadlines: requests past their timeout get their ``on_timeout``;
2. runs a previous worker stopped at shutdown (SIGTERM after the grace): resumed;
3. runs whose approval gates are all decided and whose process is gone: continued;
4. orphaned runs (active in the store, no live process; also event runs never started): resumed;
5. due cron slots: claimed once, their runs created and started (queued when the worker is full);
6. queued runs, oldest first, as the pipelines' concurrency limits allow;
7. the periodic review, when ``review.auto_schedule: true`` and ``orchestrate review`` exists.

Runs start as child processes (``children.py``), at most ``--max-runs`` at once. The loop
sleeps ``worker.active_poll`` while runs are active or queued and ``worker.idle_poll``
otherwise, and wakes at once on ``POST /wake``, on a change in ``pipelines.d/`` and on a
write to the store file (watchfiles). SIGTERM (or Ctrl-C) stops taking work, gives the
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
from orchestrate.domain.status import RunStatus
from orchestrate.services.liveness import process_alive, this_host
from orchestrate.spec.model import PipelineSpec
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
        self.loop_lag = 0.0  # how long the last pass took: a wake-up waits at most this long
        self.passes = 0
        self.schedules: list[Schedule] = []
        self._versions: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._specs: dict[tuple[str, int], PipelineSpec] = {}
        self._last_review = 0.0
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
                self.wake.wait(self.config.active_poll if busy else self.config.idle_poll)
                self.wake.clear()
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
        """Wake the loop when a pipeline file or the store changes (watchfiles)."""
        from watchfiles import watch

        pipelines = self.settings.pipelines_dir
        db = self.settings.db_path
        names = {db.name, f"{db.name}-wal"}
        folders = [p for p in (pipelines, db.parent) if p.is_dir()]

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

    def run_pass(self) -> None:
        """One pass over everything that may be due (``--once`` runs exactly this)."""
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
        self.loop_lag = time.monotonic() - started

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

    def _start(self, run_id: str, reason: str) -> None:
        child = self.children.start(run_id, reason)
        self.log(f"started run {run_id} ({reason}, pid {child.proc.pid})")

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
            self.scheduling.resumed(run_id, time.time())
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
            self._start(run.id, "approved")

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
            self._start(run.id, "event" if never_started else "orphaned")

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
        from orchestrate.services.concurrency import Policy

        for run in self.scheduling.queued():
            if not self.children.has_capacity():
                return
            spec = self._spec(run.pipeline, run.version)
            policy = Policy.of(spec.concurrency if spec else None)
            if self.scheduling.dequeue(run.id, time.time(), run.pipeline, policy.limit if policy else None):
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
            "passes": self.passes,
            "schedules": len(self.schedules),
            "uptime_seconds": round(time.time() - self.started_at, 3),
        }

    def request_wake(self) -> None:
        self.wake.set()


def _exit(code: int) -> str:
    if code == 0:
        return "succeeded"
    if code == 3:
        return "waiting for approval"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"
