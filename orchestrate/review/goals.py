"""Goals (DESIGN §8): add, link, remove, and their progress computed from the store.

A goal's value is computed from runs that finished since its start (``--since``,
default when it was added), of the pipelines it is linked to (by name, or every
pipeline whose definition carries a linked label; no links: every pipeline):

    succeeded_runs  runs that succeeded since the start
    success_rate    succeeded / (succeeded + failed) runs that finished in the last window
    p95_duration    nearest-rank P95 of the durations of the runs that succeeded in the window
    cost            mean cost (USD, summed from task metrics) per run finished in the window

The window is ``review.goal_window`` (7 days by default); the previous value is the same
figure for the window before (for succeeded_runs: the count one window ago). What the
figures mean for the goal is ``domain.review.judge``'s.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.review import (
    Goal,
    GoalMetric,
    GoalProgress,
    LinkKind,
    judge,
    p95,
    progress_fraction,
)
from orchestrate.domain.status import RunStatus

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store import Store
    from orchestrate.store.review import Row

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
EVIDENCE_RUNS = 20


def parse_metric(text: str) -> GoalMetric:
    try:
        return GoalMetric(text)
    except ValueError:
        choices = ", ".join(m.value for m in GoalMetric)
        raise UsageError(f'--metric "{text}": not one of {choices}') from None


def parse_target(metric: GoalMetric, text: str) -> float:
    """succeeded_runs: a count; success_rate: 0.9 or 90%; p95_duration: 10m or seconds; cost: 0.5 or $0.5."""
    raw = text.strip()
    bad = UsageError(f'--target "{text}": not a valid target for {metric.value}', hint=_TARGET_HINT[metric])
    if metric is GoalMetric.P95_DURATION:
        from orchestrate.spec.durations import parse_duration

        try:
            value = parse_duration(raw if not re.fullmatch(r"[0-9.]+", raw) else float(raw))
        except ValueError:
            raise bad from None
        if not math.isfinite(value) or value <= 0:
            raise bad
        return value
    percent = metric is GoalMetric.SUCCESS_RATE and raw.endswith("%")
    raw = raw.removesuffix("%") if percent else raw.removeprefix("$") if metric is GoalMetric.COST else raw
    try:
        value = float(raw)
    except ValueError:
        raise bad from None
    if not math.isfinite(value):  # nan, inf: no progress can be measured against them
        raise bad
    if metric is GoalMetric.SUCCEEDED_RUNS and (value != int(value) or value < 1):
        raise bad
    if metric is GoalMetric.SUCCESS_RATE:
        value = value / 100 if percent else value
        if not 0 < value <= 1:
            raise bad
    if metric is GoalMetric.COST and value < 0:
        raise bad
    return value


_TARGET_HINT = {
    GoalMetric.SUCCEEDED_RUNS: "a whole number of runs, e.g. --target 10",
    GoalMetric.SUCCESS_RATE: "a share of runs, e.g. --target 90% or --target 0.9",
    GoalMetric.P95_DURATION: "a duration, e.g. --target 10m",
    GoalMetric.COST: "US dollars per run, e.g. --target 0.50",
}


def parse_date(text: str, option: str, end_of_day: bool = False) -> float:
    """A local date or date and time, as epoch seconds; a bare date is its start (or its last second)."""
    try:
        day = datetime.fromisoformat(text.strip())
        if end_of_day and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            day += timedelta(days=1, seconds=-1)
        return day.timestamp()
    except ValueError:
        raise UsageError(
            f'{option} "{text}": not a date',
            hint=f"use YYYY-MM-DD or YYYY-MM-DDTHH:MM, e.g. {option} 2026-06-30",
        ) from None


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UsageError(
            f'goal name "{name}": use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit'
        )
    return name


def links_from(
    settings: Settings, store: Store, pipelines: Sequence[str], labels: Sequence[str]
) -> list[tuple[LinkKind, str]]:
    """The links given on the command line; an unknown pipeline is refused."""
    from orchestrate.services.definitions import find_definition

    out: list[tuple[LinkKind, str]] = []
    for name in pipelines:
        if store.pipeline(name) is None:
            try:
                find_definition(settings, name)
            except NotFoundError:
                raise NotFoundError(
                    f'--pipeline "{name}": unknown pipeline', hint="orchestrate pipeline list shows them"
                ) from None
        out.append((LinkKind.PIPELINE, name))
    for label in labels:
        if not label.strip():
            raise UsageError("--label: empty label")
        out.append((LinkKind.LABEL, label.strip()))
    return out


def add(
    settings: Settings,
    store: Store,
    name: str,
    metric: str,
    target: str,
    pipelines: Sequence[str],
    labels: Sequence[str],
    by: str | None,
    since: str | None,
    now: float | None = None,
) -> Goal:
    now = time.time() if now is None else now
    kind = parse_metric(metric)
    goal = Goal(
        name=check_name(name),
        metric=kind,
        target=parse_target(kind, target),
        created_at=now,
        since=parse_date(since, "--since") if since else now,
        deadline=parse_date(by, "--by", end_of_day=True) if by else None,
        created_by=settings.user,
        links=tuple(links_from(settings, store, pipelines, labels)),
    )
    if goal.deadline is not None and goal.deadline <= now:
        raise UsageError(f'--by "{by}": already past', hint="give a date in the future")
    if goal.deadline is not None and goal.since >= goal.deadline:
        raise UsageError(
            f'--since "{since}" is not before --by "{by}"', hint="count from a date before the deadline"
        )
    store.review().add_goal(goal)
    return goal


def link(
    settings: Settings,
    store: Store,
    name: str,
    pipelines: Sequence[str],
    labels: Sequence[str],
    remove: bool = False,
) -> Goal:
    if not pipelines and not labels:
        raise UsageError("nothing to link", hint=f"orchestrate goal link {name} --pipeline P or --label L")
    links = (
        [(LinkKind.PIPELINE, p) for p in pipelines] + [(LinkKind.LABEL, label.strip()) for label in labels]
        if remove
        else links_from(settings, store, pipelines, labels)
    )
    if remove:
        held = set(store.review().goal(name).links)
        for kind, value in links:
            if (kind, value) not in held:
                shown = ", ".join(f"--{k.value} {v}" for k, v in sorted(held)) or "none"
                raise UsageError(
                    f'goal {name} has no link --{kind.value} "{value}" (its links: {shown})',
                    hint=f"orchestrate goal show {name}",
                )
    store.review().link_goal(name, links, time.time(), remove)
    return store.review().goal(name)


def unknown_labels(settings: Settings, store: Store, labels: Sequence[str]) -> list[str]:
    """The labels no known pipeline has (yet): worth a warning, not an error."""
    if not labels:
        return []
    known = {label for own in pipeline_labels(settings, store).values() for label in own}
    return [label.strip() for label in labels if label.strip() and label.strip() not in known]


def pipeline_labels(settings: Settings, store: Store) -> dict[str, tuple[str, ...]]:
    """Each known pipeline's labels, from its file (or its last stored definition)."""
    from orchestrate.services import registry

    return {row.name: row.spec.labels for row in registry.sync(settings, store) if row.spec is not None}


def scope(goal: Goal, labels: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """The pipelines a goal measures; None: every pipeline (a goal without links)."""
    if not goal.links:
        return None
    names = {value for kind, value in goal.links if kind is LinkKind.PIPELINE}
    wanted = {value for kind, value in goal.links if kind is LinkKind.LABEL}
    names |= {p for p, own in labels.items() if wanted & set(own)}
    return tuple(sorted(names))


def progress(
    store: Store, goal: Goal, labels: Mapping[str, Sequence[str]], now: float, window: float
) -> GoalProgress:
    pipelines = scope(goal, labels)
    wanted = None if pipelines is None else set(pipelines)
    reader = store.review()
    start = goal.since if goal.metric is GoalMetric.SUCCEEDED_RUNS else max(goal.since, now - 2 * window)
    rows = [r for r in reader.finished_runs(start, now + 1e-6) if wanted is None or r[1] in wanted]
    cut = now - window
    current_rows = [r for r in rows if r[4] >= cut] if goal.metric is not GoalMetric.SUCCEEDED_RUNS else rows
    previous_rows = [r for r in rows if r[4] < cut]
    recent = sum(1 for r in rows if r[4] >= cut and r[2] == RunStatus.SUCCEEDED.value)
    current = _value(store, goal.metric, current_rows)
    previous = _value(store, goal.metric, previous_rows)
    status, why = judge(goal, current, previous, recent, now, window)
    shown = [r for r in current_rows if goal.metric is not GoalMetric.SUCCEEDED_RUNS or r[2] == "succeeded"]
    return GoalProgress(
        goal=goal,
        pipelines=pipelines or (),
        current=current,
        previous=previous,
        runs=len(current_rows),
        recent=recent,
        status=status,
        why=why,
        fraction=progress_fraction(goal.metric, current, goal.target),
        evidence=tuple(r[0] for r in shown[:EVIDENCE_RUNS]),
    )


def _value(store: Store, metric: GoalMetric, rows: Sequence[Row]) -> float | None:
    succeeded = [r for r in rows if r[2] == RunStatus.SUCCEEDED.value]
    if metric is GoalMetric.SUCCEEDED_RUNS:
        return float(len(succeeded))
    if not rows:
        return None
    if metric is GoalMetric.SUCCESS_RATE:
        return len(succeeded) / len(rows)
    if metric is GoalMetric.P95_DURATION:
        return p95([r[4] - r[3] for r in succeeded if r[3] is not None])
    # Task metrics, as the review's cost rule: every attempt's cost, retries included.
    start = min((r[3] if r[3] is not None else r[4]) for r in rows)
    costs = {run_id: float(cost) for run_id, _pipeline, cost in store.review().run_costs(start)}
    return sum(costs.get(r[0], 0.0) for r in rows) / len(rows)


def all_progress(
    settings: Settings, store: Store, window: float, now: float | None = None, name: str | None = None
) -> list[GoalProgress]:
    now = time.time() if now is None else now
    goals = [store.review().goal(name)] if name is not None else store.review().goals()
    labels = pipeline_labels(settings, store) if any(g.links for g in goals) else {}
    return [progress(store, g, labels, now, window) for g in goals]


def to_json(p: GoalProgress) -> dict[str, object]:
    g = p.goal
    return {
        "name": g.name,
        "metric": g.metric.value,
        "target": g.target,
        "current": p.current,
        "previous": p.previous,
        "progress": round(p.fraction, 4),
        "status": p.status.value,
        "why": p.why,
        "runs": p.runs,
        "succeeded_last_window": p.recent if g.metric is GoalMetric.SUCCEEDED_RUNS else None,
        "since": g.since,
        "deadline": g.deadline,
        "created_at": g.created_at,
        "created_by": g.created_by,
        "links": [{"kind": k.value, "value": v} for k, v in g.links],
        "pipelines": list(p.pipelines) if g.links else None,
        "evidence": {"runs": list(p.evidence)},
    }
