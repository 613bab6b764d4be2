"""``orchestrate review``: findings over recent history, and the pipelines scheduled for them.

    review(settings, store, now)            every finding, most severe first
    apply(settings, store, findings, now)   start review.on's pipeline for each finding not cooling down
    auto_schedule(settings, store, now)     review + apply, when review.auto_schedule is true (the worker)
    history(store, limit)                   the actions scheduled so far, newest first

Scheduling a finding takes the event path of ``orchestrate event emit``: an event named
``review.KIND`` whose payload is the finding (``${event.kind}``, ``${event.subject}``,
``${event.evidence.runs}``, ...) is stored, and a run of the configured pipeline is
created pointing at it and started in the background. The run is an ordinary run: a
stage with ``requires_approval`` opens its approval request and waits for a person.

A finding (its fingerprint: kind + subject) schedules at most once per
``review.cooldown``: the claim is made in the store, in the same transaction that
checks for an earlier one, before the run is created.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrate.domain.errors import OrchestrateError, UsageError, WorkspaceError
from orchestrate.domain.review import (
    ActionStatus,
    ApplyOutcome,
    Finding,
    FindingKind,
    GoalProgress,
    ReviewAction,
)
from orchestrate.review import findings as rules
from orchestrate.review.config import ReviewConfig, review_config

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.spec.model import PipelineSpec
    from orchestrate.store import Store

WORKER = "worker"


@dataclass(frozen=True)
class Review:
    findings: list[Finding]
    goals: list[GoalProgress]
    now: float
    config: ReviewConfig


def review(settings: Settings, store: Store, now: float | None = None) -> Review:
    from orchestrate.review import goals

    now = time.time() if now is None else now
    cfg = review_config(settings)
    found: list[Finding] = []
    for rule in rules.RULES:
        found += rule(store, cfg, now)
    progress = goals.all_progress(settings, store, cfg.goal_window, now)
    found += rules.stalled_goals(progress)
    return Review(rules.ordered(found), progress, now, cfg)


def apply(
    settings: Settings,
    store: Store,
    findings: list[Finding],
    now: float | None = None,
    by: str | None = None,
    cfg: ReviewConfig | None = None,
) -> list[ApplyOutcome]:
    """Start ``review.on``'s pipeline for each finding that has one and is not cooling down."""
    now = time.time() if now is None else now
    cfg = review_config(settings) if cfg is None else cfg
    if not cfg.on:
        raise UsageError(
            "nothing to schedule: review.on in orchestrate.yaml maps no finding kind to a pipeline",
            hint="add e.g.  review: {on: {repeated_failure: diagnose}}  to orchestrate.yaml",
        )
    # Every configured pipeline is checked, found or not, so a mistake shows before it matters.
    targets = {name: _target(settings, store, name, cfg) for name in sorted(set(cfg.on.values()))}
    out = []
    for finding in findings:
        name = cfg.on.get(finding.kind)
        if name is None:
            continue
        spec, version, enabled = targets[name]
        if not enabled:
            out.append(ApplyOutcome(finding, name, None, f"pipeline {name} is disabled"))
            continue
        payload = finding.to_json()
        claim = store.review().claim(
            finding.fingerprint, finding.kind, finding.subject, name, payload, now, cfg.cooldown, by
        )
        if not isinstance(claim, ReviewAction):
            at, until = claim
            out.append(ApplyOutcome(finding, name, None, _cooling(at, until)))
            continue
        out.append(ApplyOutcome(finding, name, _start(settings, store, claim, spec, version, payload, by)))
    return out


def auto_schedule(settings: Settings, store: Store, now: float | None = None) -> list[ApplyOutcome]:
    """What the worker calls each cycle: review and apply when ``review.auto_schedule: true``, else nothing.

    Returns the outcomes (scheduled or skipped) of the findings that have a pipeline in
    ``review.on``; raises OrchestrateError (a WorkspaceError naming the key) when the
    ``review:`` configuration or a pipeline it names is invalid.
    """
    cfg = review_config(settings)
    if not cfg.auto_schedule or not cfg.on:
        return []
    result = review(settings, store, now)
    return apply(settings, store, result.findings, result.now, by=WORKER, cfg=cfg)


def history(store: Store, limit: int = 50) -> list[ReviewAction]:
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    return store.review().actions(limit)


def _cooling(at: float, until: float) -> str:
    from datetime import datetime

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")

    return f"already scheduled at {stamp(at)}; cooling down until {stamp(until)}"


def _target(settings: Settings, store: Store, name: str, cfg: ReviewConfig) -> tuple[PipelineSpec, int, bool]:
    """The pipeline review.on names, checked as `pipeline run` checks it, before anything is claimed."""
    from orchestrate.services import agents, approvals
    from orchestrate.services.definitions import check_runnable, check_uses
    from orchestrate.services.runs import resolve_spec

    kinds = ", ".join(k.value for k, v in cfg.on.items() if v == name)
    try:
        spec, version = resolve_spec(settings, store, name, None)
        check_runnable(spec)
        check_uses(settings, spec)
        agents.check_pipeline(settings, spec)
        approvals.check_config(settings, spec)
    except OrchestrateError as e:
        raise WorkspaceError(
            f"{settings.root / 'orchestrate.yaml'}: review.on.{kinds}: pipeline {name}: {e.message}",
            hint=e.hint,
        ) from None
    info = store.pipeline(spec.name)
    return spec, version, info is None or info.enabled


def _start(
    settings: Settings,
    store: Store,
    claim: ReviewAction,
    spec: PipelineSpec,
    version: int,
    payload: dict[str, object],
    by: str | None,
) -> ReviewAction:
    """The run for a claimed action, started as `event emit` starts one; the action records how it went."""
    from orchestrate.domain.ids import new_run_id
    from orchestrate.domain.records import EventInfo
    from orchestrate.services import runs

    event = EventInfo(
        id=new_run_id(),
        name=f"review.{claim.kind.value}",
        payload=payload,
        created_at=time.time(),
        emitted_by=by or WORKER,
    )
    run_id = new_run_id()
    try:
        store.add_event(event)
        store.create_run(
            run_id,
            spec.name,
            version,
            spec.digest,
            dict(spec.variables),
            spec.stage_names,
            time.time(),
            trigger=f"review:{claim.kind.value}",
            started_by=by or WORKER,
            event_id=event.id,
        )
    except (OrchestrateError, OSError) as e:
        return store.review().finish_action(claim.id, ActionStatus.FAILED, None, None, str(e))
    try:
        runs.detach(settings, run_id, None)
    except OSError as e:  # the run exists, pending: the worker or `pipeline resume` can start it
        return store.review().finish_action(
            claim.id, ActionStatus.FAILED, run_id, event.id, f"could not start run {run_id}: {e}"
        )
    return store.review().finish_action(claim.id, ActionStatus.SCHEDULED, run_id, event.id, None)


def outcome_json(o: ApplyOutcome) -> dict[str, object]:
    a = o.action
    return {
        "fingerprint": o.finding.fingerprint,
        "kind": o.finding.kind.value,
        "pipeline": o.pipeline,
        "scheduled": a is not None and a.status is ActionStatus.SCHEDULED,
        "skipped": o.skipped,
        "action": None if a is None else action_json(a),
    }


def action_json(a: ReviewAction) -> dict[str, object]:
    return {
        "id": a.id,
        "fingerprint": a.fingerprint,
        "kind": a.kind.value,
        "subject": a.subject,
        "pipeline": a.pipeline,
        "status": a.status.value,
        "run": a.run_id,
        "event": a.event_id,
        "by": a.by,
        "error": a.error,
        "created_at": a.created_at,
        "cooldown_until": a.cooldown_until,
        "finding": dict(a.finding),
    }


__all__ = ["FindingKind", "Review", "apply", "auto_schedule", "history", "review"]
