"""Stale runs and overdue stages, judged at read time and never stored (DESIGN §7).

A run is *stale* when it is running and nothing has happened to it for ``stale_after``
(6 hours by default): no transition of an executed run, no report about a reported
one. A live process still heartbeats while it hangs, so staleness looks at progress,
not at liveness (that is ``orphaned``). Beyond the fixed threshold, a running stage is
*overdue* when its current attempt has run longer than ``overdue.factor`` (3) × the P95
of that stage's own past completed attempts, once it has ``overdue.min_runs`` (10) of
them: a stage that always takes two hours is not flagged at two hours and one minute,
and a ten-second stage hanging for five minutes is.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrate.domain.errors import WorkspaceError
from orchestrate.domain.observe import (
    DEFAULT_STALE_AFTER,
    ReportedPipeline,
    ReportStatus,
    overdue,
    short_duration,
)
from orchestrate.domain.records import RunSummary
from orchestrate.domain.state import RunState
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.settings import CONFIG_FILE, Settings
from orchestrate.store import Store

DEFAULT_FACTOR = 3.0
DEFAULT_MIN_RUNS = 10


@dataclass(frozen=True)
class Thresholds:
    stale_after: float = DEFAULT_STALE_AFTER
    factor: float = DEFAULT_FACTOR  # overdue: longer than factor × P95 of past durations
    min_runs: int = DEFAULT_MIN_RUNS  # overdue needs this many past durations


@dataclass(frozen=True)
class Freshness:
    """What is late about one run: why it is stale (None: it is not), and its overdue stages."""

    stale: str | None = None
    overdue: Mapping[str, str] = field(default_factory=dict)  # stage -> reason

    def as_json(self) -> dict[str, Any]:
        return {"stale": self.stale is not None, "stale_reason": self.stale, "overdue": dict(self.overdue)}


def thresholds(settings: Settings) -> Thresholds:
    """``stale_after`` and ``overdue: {factor, min_runs}`` from orchestrate.yaml."""
    from orchestrate.observe.service import stale_after

    where = settings.root / CONFIG_FILE
    section = settings.config.get("overdue") or {}
    if not isinstance(section, Mapping):
        raise WorkspaceError(f"{where}: overdue: must be a mapping like {{factor: 3, min_runs: 10}}")
    unknown = sorted(set(section) - {"factor", "min_runs"})
    if unknown:
        raise WorkspaceError(f"{where}: overdue.{unknown[0]}: unknown key (known: factor, min_runs)")
    factor = section.get("factor", DEFAULT_FACTOR)
    min_runs = section.get("min_runs", DEFAULT_MIN_RUNS)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 1:
        raise WorkspaceError(f"{where}: overdue.factor: must be a number above 1, got {factor!r}")
    if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 1:
        raise WorkspaceError(
            f"{where}: overdue.min_runs: must be a whole number of at least 1, got {min_runs!r}"
        )
    return Thresholds(stale_after(settings), float(factor), min_runs)


def stale_reason(status: RunStatus, last_update: float, now: float, after: float) -> str | None:
    if status is not RunStatus.RUNNING or now - last_update <= after:
        return None
    return f"no update for {short_duration(now - last_update)} (stale_after {short_duration(after)})"


def of_run(store: Store, state: RunState, limits: Thresholds, now: float | None = None) -> Freshness:
    """Stale and overdue for one run, from its state and the store's history."""
    now = time.time() if now is None else now
    if state.status is not RunStatus.RUNNING:
        return Freshness()
    last = store.last_updates([state.run_id]).get(state.run_id, state.started_at or state.created_at)
    late: dict[str, str] = {}
    for stage in state.stages.values():
        if stage.status is not StageStatus.RUNNING or not stage.attempts:
            continue
        past = store.past_durations(state.pipeline, stage.name)
        reason = overdue(now - stage.attempts[-1].started_at, past, limits.factor, limits.min_runs)
        if reason is not None:
            late[stage.name] = reason
    return Freshness(stale_reason(state.status, last, now, limits.stale_after), late)


def stale_runs(
    store: Store, runs: Iterable[RunSummary], limits: Thresholds, now: float | None = None
) -> dict[str, str]:
    """run id -> why it is stale, for the running ones among ``runs``."""
    now = time.time() if now is None else now
    running = [r for r in runs if r.status is RunStatus.RUNNING]
    last = store.last_updates([r.id for r in running])
    out: dict[str, str] = {}
    for run in running:
        reason = stale_reason(
            run.status, last.get(run.id, run.started_at or run.created_at), now, limits.stale_after
        )
        if reason is not None:
            out[run.id] = reason
    return out


@dataclass(frozen=True)
class Overview:
    """What `pipeline list` adds to the definitions: active runs and unfinished reported pipelines."""

    stale_runs: Mapping[str, Mapping[str, str]]  # pipeline -> {run id: why it is stale}
    active: Mapping[str, tuple[RunSummary, ...]]  # pipeline -> its active runs, oldest first
    reported: tuple[ReportedPipeline, ...]  # unfinished, newest first
    limits: Thresholds
    now: float

    def reported_stale(self, p: ReportedPipeline) -> bool:
        return p.stale(self.now, self.limits.stale_after)


def overview(settings: Settings, store: Store, now: float | None = None, *, limit: int = 50) -> Overview:
    """Active executed runs (stale ones flagged) and unfinished reported pipelines, newest first."""
    now = time.time() if now is None else now
    limits = thresholds(settings)
    active = store.active_runs()
    stale = stale_runs(store, active, limits, now)
    by_pipeline: dict[str, list[RunSummary]] = {}
    stale_by: dict[str, dict[str, str]] = {}
    for run in active:
        by_pipeline.setdefault(run.pipeline, []).append(run)
        if run.id in stale:
            stale_by.setdefault(run.pipeline, {})[run.id] = stale[run.id]
    reports = store.reports()
    reported: list[ReportedPipeline] = []
    for status in (ReportStatus.RUNNING, ReportStatus.PENDING):
        reported += reports.pipelines(status=status, limit=limit)[0]
    reported.sort(key=lambda p: (p.created_at, p.id), reverse=True)
    return Overview(
        stale_by,
        {k: tuple(v) for k, v in by_pipeline.items()},
        tuple(reported[:limit]),
        limits,
        now,
    )
