"""Goals and review findings rendered: pure functions of the domain values (DESIGN §8)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrate.domain.review import (
    ActionStatus,
    ApplyOutcome,
    Finding,
    GoalProgress,
    GoalStatus,
    ReviewAction,
    Severity,
    fmt_value,
)
from orchestrate.ui.text import ago

BAR_WIDTH = 20
_STATUS_STYLE = {
    GoalStatus.MET: "bold green",
    GoalStatus.ON_TRACK: "green",
    GoalStatus.BEHIND: "yellow",
    GoalStatus.STALLED: "bold red",
    GoalStatus.MISSED: "red",
}
_SEVERITY_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A text progress bar: filled eighths then spaces, ``width`` cells, then the percentage."""
    cells = max(0.0, min(1.0, fraction)) * width
    full = int(cells)
    partial = " ▏▎▍▌▋▊▉"[int((cells - full) * 8)] if full < width else ""
    return ("█" * full + partial).ljust(width) + f" {fraction:4.0%}"


def _deadline(at: float | None) -> str:
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def goals_table(items: Sequence[GoalProgress]) -> RenderableType:
    if not items:
        return Text("no goals yet; add one: orchestrate goal add NAME --metric succeeded_runs --target 10")
    table = Table(box=None, pad_edge=False)
    for column in ("goal", "metric", "progress", "now", "target", "status", "by", "scope"):
        table.add_column(column, no_wrap=column != "scope")
    for p in items:
        g = p.goal
        table.add_row(
            g.name,
            g.metric.value,
            bar(p.fraction),
            fmt_value(g.metric, p.current),
            fmt_value(g.metric, g.target),
            Text(p.status.value.replace("_", "-"), style=_STATUS_STYLE[p.status]),
            _deadline(g.deadline),
            _scope(p),
        )
    return table


def _scope(p: GoalProgress) -> str:
    if not p.goal.links:
        return "all pipelines"
    links = ", ".join(f"{k.value}:{v}" for k, v in p.goal.links)
    return links + (f" → {', '.join(p.pipelines)}" if p.pipelines else " → no pipeline yet")


def goal_detail(p: GoalProgress, now: float) -> RenderableType:
    g = p.goal
    lines = [
        Text.assemble((g.name, "bold"), f"  {g.metric.value} → {fmt_value(g.metric, g.target)}"),
        Text(f"progress   {bar(p.fraction)}"),
        Text.assemble(
            "status     ", (p.status.value.replace("_", "-"), _STATUS_STYLE[p.status]), f"  ({p.why})"
        ),
        Text(f"now        {fmt_value(g.metric, p.current)} from {p.runs} finished run(s)"),
        Text(f"previous   {fmt_value(g.metric, p.previous)} (the window before)"),
        Text(
            f"since      {_deadline(g.since)}"
            + (f"   deadline {_deadline(g.deadline)}" if g.deadline else "")
        ),
        Text(f"scope      {_scope(p)}"),
        Text(f"added      {ago(g.created_at, now)}" + (f" by {g.created_by}" if g.created_by else "")),
    ]
    if p.evidence:
        lines.append(Text("runs       " + ", ".join(p.evidence)))
    return Group(*lines)


def findings_view(findings: Sequence[Finding]) -> RenderableType:
    if not findings:
        return Text("no findings: nothing stale, failing, slow, costly or stuck", style="green")
    table = Table(box=None, pad_edge=False, show_lines=False)
    for column in ("severity", "kind", "finding", "evidence", "suggested action"):
        table.add_column(column, no_wrap=column in ("severity", "kind"))
    for f in findings:
        runs = ", ".join(f.runs[:3]) + (f" +{len(f.runs) - 3}" if len(f.runs) > 3 else "")
        table.add_row(
            Text(f.severity.value, style=_SEVERITY_STYLE[f.severity]), f.kind.value, f.summary, runs, f.action
        )
    counts: dict[Severity, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    head = ", ".join(f"{n} {s.value}" for s, n in counts.items())
    return Group(Text(f"{len(findings)} finding(s): {head}", style="bold"), table)


def outcomes_view(outcomes: Sequence[ApplyOutcome]) -> RenderableType:
    if not outcomes:
        return Text("nothing scheduled: no finding has a pipeline in review.on")
    lines = []
    for o in outcomes:
        a = o.action
        if a is None:
            lines.append(Text(f"skipped   {o.finding.fingerprint} → {o.pipeline}: {o.skipped}", style="dim"))
        elif a.status is ActionStatus.SCHEDULED:
            lines.append(
                Text(f"scheduled {o.finding.fingerprint} → {o.pipeline}: run {a.run_id}", style="green")
            )
        else:
            lines.append(Text(f"failed    {o.finding.fingerprint} → {o.pipeline}: {a.error}", style="red"))
    return Group(*lines)


def history_table(actions: Sequence[ReviewAction], now: float) -> RenderableType:
    if not actions:
        return Text("nothing scheduled yet: orchestrate review --apply starts review.on's pipelines")
    table = Table(box=None, pad_edge=False)
    for column in ("id", "when", "finding", "pipeline", "run", "status", "by", "cool-down until"):
        table.add_column(column, no_wrap=True)
    for a in actions:
        table.add_row(
            str(a.id),
            ago(a.created_at, now),
            a.fingerprint,
            a.pipeline,
            a.run_id or "",
            a.status.value if a.error is None else f"{a.status.value}: {a.error}",
            a.by or "",
            _deadline(a.cooldown_until),
        )
    return table
