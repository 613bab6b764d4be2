"""Histories for the goal and review tests, written through the store's own APIs.

Runs go through ``Store.create_run`` and the run writer (the events a run process
emits), task metrics through ``Store.record_metric``; approval requests, which only
the approval gate opens, are inserted as rows.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

from orchestrate.domain.events import RunFinished, RunStarted, StageFinished, StageSkipped, StageStarted
from orchestrate.domain.metrics import MetricStatus, TaskMetric
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.settings import Settings, resolve
from orchestrate.spec.model import PipelineSpec, StageKind, StageSpec
from orchestrate.store import Store
from tests.cli.helpers import rows

HOUR = 3600.0
DAY = 86400.0
_ids = itertools.count(1)


def settings_for(root: Path) -> Settings:
    return resolve(root, {}, root)


def new_id(prefix: str = "r") -> str:
    return f"{prefix}{next(_ids):015d}"


def add_run(
    store: Store,
    pipeline: str,
    *,
    at: float,
    status: RunStatus = RunStatus.SUCCEEDED,
    stages: Mapping[str, StageStatus] | None = None,
    duration: float = 10.0,
    variables: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> str:
    """A run created at ``at``; finished ``duration`` later unless ``status`` is active."""
    run_id = run_id or new_id()
    stages = dict(
        stages or {"work": StageStatus.SUCCEEDED if status is RunStatus.SUCCEEDED else StageStatus.FAILED}
    )
    digest = "d" * 64
    compiled = PipelineSpec(
        name=pipeline, stages=tuple(StageSpec(name, StageKind.RUN, (), run="true") for name in stages)
    ).to_dict()
    version = store.register_version(
        pipeline, digest, f"pipelines.d/{pipeline}.yaml", f"name: {pipeline}\n", json.dumps(compiled)
    )
    store.create_run(run_id, pipeline, version, digest, dict(variables or {}), list(stages), at)
    if status is RunStatus.PENDING:
        return run_id
    writer = store.writer(run_id)
    writer.emit(RunStarted(run_id, at, pid=999_999, host="elsewhere"))
    step = duration / (len(stages) + 1)
    for i, (name, outcome) in enumerate(stages.items()):
        t = at + step * i
        if outcome is StageStatus.SKIPPED:
            writer.emit(StageSkipped(run_id, name, t, "when: false"))
            continue
        writer.emit(StageStarted(run_id, name, 1, t, f"logs/{run_id}/{name}.log"))
        if outcome is not StageStatus.RUNNING:
            writer.emit(StageFinished(run_id, name, 1, t + step, outcome))
    if status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        writer.emit(RunFinished(run_id, at + duration, status))
    return run_id


def add_attempt(
    store: Store,
    pipeline: str,
    stage: str,
    *,
    at: float,
    status: MetricStatus = MetricStatus.COMPLETED,
    duration: float = 1.0,
    run_id: str | None = None,
    cost: float | None = None,
) -> str:
    run_id = run_id or new_id("m")
    store.record_metric(
        TaskMetric(
            task_id=f"{run_id}/{stage}/1",
            task_type="run",
            duration_seconds=duration,
            status=status,
            created_at=at,
            pipeline=pipeline,
            run_id=run_id,
            stage=stage,
            attempt=1,
            cost_usd=cost,
        )
    )
    return run_id


def add_approval(
    db: Path, run_id: str, *, created: float, decided: float | None = None, status: str = "pending"
) -> str:
    request_id = new_id("a")
    rows(
        db,
        "INSERT INTO approval_requests (id, run_id, stage, iteration, status, approvers, eligible, quorum, "
        "on_timeout, escalate_to, escalated, prevent_self_approval, created_at, decided_at) "
        "VALUES (?, ?, 'gate', 1, ?, ?, ?, 1, 'reject', '[]', FALSE, FALSE, ?, ?)",
        request_id, run_id, status, json.dumps(["alice"]), json.dumps(["alice"]), created, decided,
    )  # fmt: skip
    return request_id


def nearest_rank(values: Sequence[float], p: int) -> float:
    """The textbook nearest-rank percentile, independent of the code under test."""
    ordered = sorted(values)
    return ordered[math.ceil(Fraction(p, 100) * len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
