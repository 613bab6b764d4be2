"""Tables for the registry and the run history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from orchestrate.domain.observe import ReportedPipeline
from orchestrate.domain.records import EventInfo, RunSummary, VersionInfo
from orchestrate.graph import Dag
from orchestrate.services.freshness import Overview
from orchestrate.services.registry import Listed, Template
from orchestrate.spec.model import PipelineSpec, TriggerSpec
from orchestrate.ui.run_view import status_text
from orchestrate.ui.text import ago, format_duration


def trigger_text(triggers: Sequence[TriggerSpec]) -> str:
    parts = []
    for t in triggers:
        if t.event:
            parts.append(t.event + (f" [{', '.join(t.branches)}]" if t.branches else ""))
        elif t.cron:
            parts.append(f"cron {t.cron}")
    return "; ".join(parts) or "manual"


def pipeline_table(
    rows: Sequence[Listed], now: float, stale: Mapping[str, Mapping[str, str]] | None = None
) -> RenderableType:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("pipeline", "enabled", "version", "triggers", "last run", "success"):
        table.add_column(column)
    problems: list[Text] = []
    for row in rows:
        info = row.info
        last = info.last_run if info else None
        rate = info.success_rate if info else None
        table.add_row(
            Text(row.name),
            "yes" if info is None or info.enabled else Text("no", style="yellow"),
            str(row.version or ""),
            Text(trigger_text(row.spec.triggers) if row.spec else ""),
            Text.assemble(
                status_text(last.status.value, "running (orphaned)" if row.last_orphaned else None),
                f" {ago(last.created_at, now)}",
                (" stale", "bold yellow") if last.id in (stale or {}).get(row.name, {}) else "",
            )
            if last
            else Text("never", style="dim"),
            f"{rate:.0%} of {info.finished}" if info is not None and rate is not None else "",
        )
        if row.error:
            problems.append(Text(f"⚠ {row.error}", style="yellow"))
        if row.path is None:
            problems.append(
                Text(f"⚠ {row.name}: its file is gone from pipelines.d/; runs stay readable", style="dim")
            )
    if not rows:
        return Text("no pipelines yet: orchestrate pipeline init ci, or put a YAML file in pipelines.d/")
    return Group(table, *problems)


def overview_view(
    rows: Sequence[Listed], seen: Overview, reported: Sequence[ReportedPipeline], *, stale_only: bool = False
) -> RenderableType:
    """`pipeline list`: the definitions, their stale runs, then the unfinished reported pipelines."""
    from orchestrate.domain.observe import Page
    from orchestrate.ui.observe_view import pipeline_table as reported_table

    parts: list[RenderableType] = []
    if rows or not stale_only:
        parts.append(pipeline_table(rows, seen.now, seen.stale_runs))
    for name in sorted(seen.stale_runs):
        if stale_only and name not in {r.name for r in rows}:
            continue
        for run_id, why in seen.stale_runs[name].items():
            parts.append(Text(f"⚠ {name} run {run_id} is stale: {why}", style="yellow"))
    if reported:
        page = Page(
            list(reported), len(reported), max(1, len(reported)), 0, seen.limits.stale_after, seen.now
        )
        parts += [Text("\nagent pipelines (reported, unfinished)", style="bold"), reported_table(page)]
    if stale_only and not parts:
        return Text("no stale runs")
    return Group(*parts)


def pipeline_detail(info: VersionInfo, spec: PipelineSpec, versions: int) -> RenderableType:
    dag = Dag.from_spec(spec)
    levels = dag.levels()
    summary = Text.assemble(
        (spec.name, "bold"),
        f"  version {info.version} of {versions}  {info.path}  digest {info.digest[:12]}\n",
        f"{len(spec.stages)} stages in {len(levels)} levels; roots: {', '.join(dag.roots())}; ",
        f"triggers: {trigger_text(spec.triggers)}",
    )
    if spec.description:
        summary.append(f"\n{spec.description}", style="dim")
    return Group(summary, Syntax(info.text, "yaml", line_numbers=True, word_wrap=True))


def history_table(
    name: str,
    runs: Sequence[RunSummary],
    now: float,
    usage: Mapping[str, tuple[int, float]] | None = None,
    stale: Mapping[str, str] | None = None,
) -> RenderableType:
    if not runs:
        return Text(f"no runs of {name} yet: orchestrate pipeline run {name}")
    table = Table(box=None, pad_edge=False, header_style="bold")
    usage = usage or {}
    columns = ["run", "status", "started", "duration", "version", "by", "reason"]
    if usage:
        columns[4:4] = ["tokens", "cost"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in runs:
        tokens, cost = usage.get(r.id, (0, 0.0))
        money = [f"{tokens:,}" if tokens else "", f"${cost:.4f}" if cost else ""] if usage else []
        table.add_row(
            r.id,
            Text.assemble(
                status_text(r.status.value), (" stale", "bold yellow") if r.id in (stale or {}) else ""
            ),
            ago(r.started_at or r.created_at, now),
            format_duration(r.duration(now)),
            *money,
            str(r.version),
            Text(r.started_by or r.triggered_by or ""),
            Text(r.reason or "", style="dim"),
        )
    return table


def template_table(items: Sequence[Template]) -> RenderableType:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("template")
    table.add_column("description")
    for t in items:
        table.add_row(t.name, Text(t.description))
    return Group(
        table, Text("copy one into pipelines.d/: orchestrate pipeline init NAME [--name NEW]", style="dim")
    )


def event_table(rows: Sequence[tuple[EventInfo, Sequence[RunSummary]]], now: float) -> RenderableType:
    if not rows:
        return Text("no events yet: orchestrate event emit NAME")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("event", "name", "when", "branch", "labels", "runs started"):
        table.add_column(column, overflow="fold")
    for event, runs in rows:
        started = Text()
        for i, r in enumerate(runs):
            if i:
                started.append(", ")
            started.append(f"{r.pipeline} {r.id} ")
            started.append_text(status_text(r.status.value))
        if not runs:
            started = Text("dry run" if event.dry_run else "none", style="dim")
        table.add_row(
            event.id,
            Text(event.name),
            ago(event.created_at, now),
            Text(event.branch or ""),
            Text(", ".join(event.labels)),
            started,
        )
    return table
