"""Reported pipelines as text: the list, one pipeline's tree, and watching either live.

Pure functions of the pipelines and ``now``: the watch loop calls them again every
refresh, so durations of running jobs tick (derived from their timestamps).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrate.domain.observe import Page, ReportedJob, ReportedPipeline
from orchestrate.ui.text import ago, format_duration

STYLE = {
    "pending": "dim",
    "running": "bold blue",
    "succeeded": "bold green",
    "failed": "bold red",
    "cancelled": "yellow",
}
MARK = {"pending": "○", "running": "●", "succeeded": "✓", "failed": "✗", "cancelled": "–"}


def status_text(p: ReportedPipeline, now: float, stale_after: float) -> Text:
    text = Text(p.status.value, style=STYLE.get(p.status.value, ""))
    if p.stale(now, stale_after):
        text.append(" stale", style="bold yellow")
    return text


def pipeline_table(page: Page) -> RenderableType:
    if not page.pipelines:
        return Text("no reported pipelines" + (" match" if page.total or page.offset else ""))
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("pipeline", "type", "title", "sprint", "status", "jobs", "started", "duration", "updated"):
        table.add_column(column, overflow="fold")
    for p in page.pipelines:
        table.add_row(
            p.id,
            p.type.value,
            Text(p.title),
            Text(p.sprint or ""),
            status_text(p, page.now, page.stale_after),
            str(p.job_count),
            ago(p.created_at, page.now),
            format_duration(p.duration(page.now)),
            ago(p.updated_at, page.now),
        )
    shown = f"{page.offset + 1}-{page.offset + len(page.pipelines)} of {page.total}"
    more = f"; next: --offset {page.next_offset}" if page.next_offset is not None else ""
    return Group(table, Text(f"\n{shown}{more}", style="dim"))


def _job_line(job: ReportedJob, root: Path, now: float) -> Text:
    line = Text("    ")
    line.append(f"{MARK.get(job.status.value, '?')} ", style=STYLE.get(job.status.value, ""))
    line.append(job.name, style="bold")
    line.append(f"  {job.status.value}", style=STYLE.get(job.status.value, ""))
    duration = format_duration(job.duration(now))
    if duration:
        line.append(f"  {duration}")
    line.append(f"  {job.id}", style="dim")
    if job.summary:
        line.append(f"\n      {job.summary}")
    if job.log_path:
        line.append(f"\n      log: {root / job.log_path}", style="dim")
    return line


def pipeline_tree(p: ReportedPipeline, root: Path, now: float, stale_after: float) -> RenderableType:
    head = Text()
    head.append(f"{p.type.value} “{p.title}”  ", style="bold")
    head.append_text(status_text(p, now, stale_after))
    facts = [f"id {p.id}"]
    if p.sprint:
        facts.append(f"sprint {p.sprint}")
    if p.created_by:
        facts.append(f"by {p.created_by}")
    if p.run_id:
        facts.append(f"from run {p.run_id} stage {p.stage}")
    facts.append(f"started {ago(p.created_at, now)}")
    facts.append(f"{'took' if p.finished_at else 'open for'} {format_duration(p.duration(now))}")
    facts.append(f"updated {ago(p.updated_at, now)}")
    head.append("\n" + " · ".join(facts), style="dim")
    if p.summary:
        head.append(f"\n{p.summary}")
    if p.logs_cleaned_at:
        head.append(f"\nlogs cleaned {ago(p.logs_cleaned_at, now)}", style="dim")
    parts: list[RenderableType] = [head]
    for step in p.steps:
        line = Text("\n  ")
        line.append(f"{MARK.get(step.status.value, '?')} {step.name}", style=STYLE.get(step.status.value, ""))
        line.append(f"  {step.status.value}")
        duration = format_duration(step.duration(now))
        if duration:
            line.append(f"  {duration}")
        if not step.jobs:
            line.append("  no jobs", style="dim")
        parts.append(line)
        parts.extend(_job_line(job, root, now) for job in step.jobs)
    return Group(*parts)


def job_log_view(
    job: ReportedJob, path: Path | None, markdown: str, cleaned_at: float | None
) -> RenderableType:
    head = Text()
    head.append(f"{job.name}  ", style="bold")
    head.append(job.status.value, style=STYLE.get(job.status.value, ""))
    head.append(f"\njob {job.id} · step {job.step} · pipeline {job.pipeline_id}", style="dim")
    if job.summary:
        head.append(f"\n{job.summary}")
    if path is None:
        return Group(head, Text("\nno log yet (orchestrate report log JOB --file F adds to it)", style="dim"))
    if cleaned_at is not None:
        return Group(head, Text(f"\nlog deleted by `report clean` ({path})", style="dim"))
    return Group(head, Text(f"{path}\n", style="dim"), Text(markdown))


def watch(console: Console, frame: Callable[[], RenderableType], interval: float = 2.0) -> None:
    """Redraw ``frame()`` every ``interval`` seconds until Ctrl-C, which ends it quietly."""
    try:
        with Live(frame(), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return
