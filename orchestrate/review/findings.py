"""What ``orchestrate review`` looks for, each rule a function of recent history (DESIGN §8).

    stale_run            an active run (pending or running) with no transition for stale_after
    stale_report         a self-reported pipeline still running with no report for stale_after
    repeated_failure     the same stage failed in each of its pipeline's last N finished runs
                         that ran it (N = consecutive_failures)
    timeout_pattern      at least timeout_ratio of a stage's last timeout_window attempts timed out
    duration_regression  P95 of a stage's last duration_window succeeded attempts is at least
                         duration_ratio × the P95 of the duration_window before, and at
                         least min_duration (1s) longer: a few milliseconds more is noise
    cost_anomaly         a run cost at least cost_ratio × the median of its pipeline's last
                         cost_window runs that reported a cost
    stuck_approval       an approval pending longer than approval_ratio × the median time its
                         pipeline's decided approvals took
    duplicate_runs       two or more pending or queued runs (or one beside a running one) of the
                         same pipeline with the same variables
    stalled_goal         a goal whose status is stalled (see domain.review)

Only history newer than ``lookback`` (30 days) is read.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrate.domain.metrics import MetricStatus
from orchestrate.domain.observe import ReportStatus
from orchestrate.domain.review import (
    SEVERITY_ORDER,
    Finding,
    FindingKind,
    GoalProgress,
    GoalStatus,
    Severity,
    fmt_duration,
    fmt_value,
    p95,
)
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.review.config import ReviewConfig

if TYPE_CHECKING:
    from orchestrate.store import Store

_FAILED = {StageStatus.FAILED.value}
_RAN = {StageStatus.SUCCEEDED.value, StageStatus.FAILED.value, StageStatus.ROLLED_BACK.value}


def stale_runs(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    from orchestrate.services.liveness import process_alive

    out = []
    for run_id, pipeline, status, _vars, created, pid, host, beat, last in store.review().active_runs():
        if status in (RunStatus.WAITING_APPROVAL.value, RunStatus.QUEUED.value):
            continue  # at a gate it waits for a person (stuck_approval); queued, for the worker
        last_change = last if last is not None else created
        idle = now - last_change
        if idle <= cfg.stale_after:
            continue
        alive = process_alive(pid, host, beat, now)
        if status == RunStatus.PENDING.value and pid is None:
            action = f"orchestrate pipeline resume {run_id}   (never started; or: orchestrate pipeline cancel {run_id})"
        elif not alive:
            action = f"orchestrate pipeline resume {run_id}   (its process is gone; or cancel it)"
        else:
            action = f"orchestrate pipeline logs {run_id}   (then cancel it if it hangs)"
        out.append(
            Finding(
                FindingKind.STALE_RUN,
                Severity.HIGH,
                subject=run_id,
                pipeline=pipeline,
                summary=f"run {run_id} of {pipeline} is {status} with no transition for {fmt_duration(idle)}"
                + ("" if alive else "; no live process runs it"),
                action=action,
                runs=(run_id,),
                details={"idle_seconds": round(idle, 3), "status": status, "process_alive": alive},
            )
        )
    return out


def stale_reports(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    items, _total = store.reports().pipelines(
        status=ReportStatus.RUNNING,
        type=None,
        sprint=None,
        stale_before=now - cfg.stale_after,
        limit=100,
        offset=0,
    )
    return [
        Finding(
            FindingKind.STALE_REPORT,
            Severity.MEDIUM,
            subject=p.id,
            summary=f'reported pipeline {p.id} "{p.title}" has had no report for {fmt_duration(now - p.updated_at)}',
            action=f"orchestrate report show {p.id}   (then: orchestrate report finish {p.id} --status failure)",
            runs=(p.run_id,) if p.run_id else (),
            details={"idle_seconds": round(now - p.updated_at, 3)},
        )
        for p in items
    ]


def repeated_failures(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    n = cfg.consecutive_failures
    # Enough runs that a stage skipped in some of them still shows n in a row.
    rows = store.review().recent_stages(now - cfg.lookback, max(4 * n, 20))
    by_stage: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for pipeline, run_id, stage, status in rows:  # newest run first
        if status in _RAN:
            by_stage[(pipeline, stage)].append((run_id, status))
    out = []
    for (pipeline, stage), runs in by_stage.items():
        streak = []
        for run_id, status in runs:
            if status not in _FAILED:
                break
            streak.append(run_id)
        if len(streak) >= n:
            out.append(
                Finding(
                    FindingKind.REPEATED_FAILURE,
                    Severity.HIGH,
                    subject=f"{pipeline}/{stage}",
                    pipeline=pipeline,
                    summary=f"stage {stage} of {pipeline} failed in the last {len(streak)} runs in a row",
                    action=f"orchestrate pipeline logs {streak[0]} {stage}",
                    runs=tuple(streak),
                    details={"stage": stage, "consecutive": len(streak)},
                )
            )
    return out


def timeout_patterns(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    statuses = (MetricStatus.COMPLETED.value, MetricStatus.FAILED.value, MetricStatus.TIMED_OUT.value)
    rows = store.review().recent_attempts(now - cfg.lookback, statuses, cfg.timeout_window)
    by_stage: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for pipeline, stage, run_id, status, _duration in rows:
        by_stage[(pipeline, stage)].append((run_id, status))
    out = []
    for (pipeline, stage), attempts in by_stage.items():
        timed_out = [run_id for run_id, status in attempts if status == MetricStatus.TIMED_OUT.value]
        if len(attempts) < cfg.timeout_min_attempts or not timed_out:
            continue
        share = len(timed_out) / len(attempts)
        if share >= cfg.timeout_ratio:
            out.append(
                Finding(
                    FindingKind.TIMEOUT_PATTERN,
                    Severity.MEDIUM,
                    subject=f"{pipeline}/{stage}",
                    pipeline=pipeline,
                    summary=f"{len(timed_out)} of the last {len(attempts)} attempts of {pipeline}/{stage} "
                    f"timed out ({share:.0%})",
                    # No apostrophe: the action reaches shell stages as ${event.suggested_action}.
                    action=f"raise stages[{stage}].timeout in the definition of {pipeline}, or find what hangs: "
                    f"orchestrate pipeline logs {timed_out[0]} {stage}",
                    runs=tuple(dict.fromkeys(timed_out)),
                    details={
                        "stage": stage,
                        "timed_out": len(timed_out),
                        "attempts": len(attempts),
                        "ratio": round(share, 4),
                    },
                )
            )
    return out


def duration_regressions(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    n = cfg.duration_window
    rows = store.review().recent_attempts(now - cfg.lookback, (MetricStatus.COMPLETED.value,), 2 * n)
    by_stage: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for pipeline, stage, run_id, _status, duration in rows:
        by_stage[(pipeline, stage)].append((run_id, float(duration)))
    out = []
    for (pipeline, stage), attempts in by_stage.items():
        if len(attempts) < 2 * n:
            continue
        last, before = attempts[:n], attempts[n:]
        now_p95, was_p95 = p95([d for _, d in last]), p95([d for _, d in before])
        assert now_p95 is not None and was_p95 is not None
        if was_p95 > 0 and now_p95 >= cfg.duration_ratio * was_p95 and now_p95 - was_p95 >= cfg.min_duration:
            slow = [run_id for run_id, d in last if d > was_p95]
            out.append(
                Finding(
                    FindingKind.DURATION_REGRESSION,
                    Severity.MEDIUM,
                    subject=f"{pipeline}/{stage}",
                    pipeline=pipeline,
                    summary=f"P95 of {pipeline}/{stage} rose from {fmt_duration(was_p95)} to "
                    f"{fmt_duration(now_p95)} ({now_p95 / was_p95:.1f}×) over its last {n} successful attempts",
                    action=f"orchestrate metrics --pipeline {pipeline} --by stage; compare the logs of "
                    f"{slow[0] if slow else last[0][0]} with an earlier run",
                    runs=tuple(dict.fromkeys(slow)),
                    details={
                        "stage": stage,
                        "p95_seconds": now_p95,
                        "previous_p95_seconds": was_p95,
                        "ratio": round(now_p95 / was_p95, 4),
                        "window": n,
                    },
                )
            )
    return out


def cost_anomalies(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    by_pipeline: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for run_id, pipeline, cost in store.review().run_costs(now - cfg.lookback):
        if len(by_pipeline[pipeline]) < cfg.cost_window:
            by_pipeline[pipeline].append((run_id, float(cost)))
    out = []
    for pipeline, runs in by_pipeline.items():
        if len(runs) < cfg.cost_min_runs:
            continue
        median = statistics.median(c for _, c in runs)
        if median <= 0:
            continue
        for run_id, cost in runs:
            if cost >= cfg.cost_ratio * median:
                out.append(
                    Finding(
                        FindingKind.COST_ANOMALY,
                        Severity.MEDIUM,
                        subject=run_id,
                        pipeline=pipeline,
                        summary=f"run {run_id} of {pipeline} cost ${cost:.4g}, {cost / median:.1f}× the "
                        f"median ${median:.4g} of its last {len(runs)} runs",
                        action=f"orchestrate metrics --pipeline {pipeline} --by stage; "
                        f"orchestrate pipeline status {run_id}",
                        runs=(run_id,),
                        details={
                            "cost_usd": cost,
                            "median_usd": median,
                            "ratio": round(cost / median, 4),
                            "runs_in_median": len(runs),
                        },
                    )
                )
    return out


def stuck_approvals(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    from orchestrate.domain.approvals import RequestStatus

    decided = (RequestStatus.APPROVED.value, RequestStatus.REJECTED.value, RequestStatus.PUSHED_BACK.value)
    times: dict[str, list[float]] = defaultdict(list)
    reader = store.review()
    for pipeline, seconds in reader.decision_times(now - cfg.lookback, decided):
        times[pipeline].append(float(seconds))
    out = []
    for request_id, run_id, stage, pipeline, created in reader.pending_approvals(RequestStatus.PENDING.value):
        past = times.get(pipeline, [])
        if len(past) < cfg.approval_min_decisions:
            continue
        median = statistics.median(past)
        waited = now - created
        if waited > cfg.approval_ratio * median:
            out.append(
                Finding(
                    FindingKind.STUCK_APPROVAL,
                    Severity.MEDIUM,
                    subject=request_id,
                    pipeline=pipeline,
                    summary=f"approval {request_id} ({pipeline}/{stage}) has waited {fmt_duration(waited)}, "
                    f"over {cfg.approval_ratio:g}× the median decision time {fmt_duration(median)}",
                    action=f"orchestrate approval show {request_id}   (remind the approvers, or delegate)",
                    runs=(run_id,),
                    details={
                        "request": request_id,
                        "stage": stage,
                        "waited_seconds": round(waited, 3),
                        "median_decision_seconds": median,
                        "decisions": len(past),
                    },
                )
            )
    return out


def duplicate_runs(store: Store, cfg: ReviewConfig, now: float) -> list[Finding]:
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    waiting = (RunStatus.PENDING.value, RunStatus.QUEUED.value)  # not started yet: cancelling costs nothing
    for run_id, pipeline, status, variables, *_rest in store.review().active_runs():
        if status in (*waiting, RunStatus.RUNNING.value):
            canonical = json.dumps(json.loads(variables), sort_keys=True)
            groups[(pipeline, canonical)].append((run_id, status))
    out = []
    for (pipeline, variables), runs in groups.items():
        pending = [run_id for run_id, status in runs if status in waiting]
        queued = sum(status == RunStatus.QUEUED.value for _, status in runs)
        if len(runs) < 2 or not pending:
            continue
        digest = hashlib.sha256(variables.encode()).hexdigest()[:12]
        keep = runs[0][0]  # the oldest (active_runs is ordered by creation)
        extra = [run_id for run_id, _ in runs[1:]]
        out.append(
            Finding(
                FindingKind.DUPLICATE_RUNS,
                Severity.LOW,
                subject=f"{pipeline}@{digest}",
                pipeline=pipeline,
                summary=f"{len(runs)} runs of {pipeline} with the same variables are queued or running "
                f"({len(pending)} not started{f', {queued} of them queued' if queued else ''})",
                action=f"orchestrate pipeline cancel {extra[-1]}   (keep {keep})",
                runs=tuple(reversed([r for r, _ in runs])),
                details={"variables": json.loads(variables), "pending": len(pending), "queued": queued},
            )
        )
    return out


def stalled_goals(progress: Sequence[GoalProgress]) -> list[Finding]:
    return [
        Finding(
            FindingKind.STALLED_GOAL,
            Severity.MEDIUM,
            subject=p.goal.name,
            summary=f"goal {p.goal.name} is stalled at {fmt_value(p.goal.metric, p.current)} of "
            f"{fmt_value(p.goal.metric, p.goal.target)}: {p.why}",
            action=f"orchestrate goal show {p.goal.name}",
            runs=p.evidence,
            details={
                "goal": p.goal.name,
                "metric": p.goal.metric.value,
                "current": p.current,
                "target": p.goal.target,
            },
        )
        for p in progress
        if p.status is GoalStatus.STALLED
    ]


RULES = (
    stale_runs,
    stale_reports,
    repeated_failures,
    timeout_patterns,
    duration_regressions,
    cost_anomalies,
    stuck_approvals,
    duplicate_runs,
)


def ordered(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.kind.value, f.subject))
