"""``orchestrate metrics``: the summary of metrics.service rendered, a pure function of its JSON.

The view reads only the dictionary ``--json`` prints, so the two cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrate.ui.text import format_duration

EMPTY = (
    "no metrics yet: runs record one per stage attempt;\n"
    "or: orchestrate metrics record --task-type TYPE --duration SECONDS --status completed"
)
_BLOCKS = "▁▂▃▄▅▆▇█"
_BY_TITLES = {
    "task_type": "task type",
    "model": "model",
    "executor": "executor",
    "pipeline": "pipeline",
    "stage": "stage",
    "variant": "prompt variant",
}


def metrics_view(summary: Mapping[str, Any]) -> RenderableType:
    execution = summary["execution_time"]
    filters = summary.get("filters") or {}
    if not execution["count"]:
        shown = _filters_text(filters)
        if shown:
            return Text(f"no task metrics match {shown}; without filters: orchestrate metrics")
        return Text(EMPTY)
    parts: list[RenderableType] = [_title(execution["count"], filters), Text(""), _figures(summary), Text("")]
    by = summary.get("by")
    if by is not None and "group_by" in summary:
        parts.append(breakdown(_BY_TITLES.get(by, by), summary["group_by"]))
    else:
        parts.append(breakdown("task type", summary["by_task_type"]))
        parts.append(Text(""))
        parts.append(breakdown("model", summary["by_model"]))
    if summary.get("daily"):
        parts += [Text(""), daily_chart(summary["daily"])]
    return Group(*parts)


def _filters_text(filters: Mapping[str, Any]) -> str:
    shown = []
    if filters.get("since"):
        shown.append(f"since {str(filters['since'])[:16].replace('T', ' ')}")
    if filters.get("pipeline"):
        shown.append(f"pipeline {filters['pipeline']}")
    if filters.get("status"):
        shown.append(f"status {filters['status']}")
    return ", ".join(shown)


def _title(count: int, filters: Mapping[str, Any]) -> Text:
    title = Text.assemble(("Task metrics", "bold"), f"  {count:,} task{'s' if count != 1 else ''}")
    shown = _filters_text(filters)
    if shown:
        title.append(f"  ({shown})", style="dim")
    return title


def _figures(summary: Mapping[str, Any]) -> Table:
    execution, success, usage = summary["execution_time"], summary["success_rate"], summary["usage"]
    grid = Table.grid(padding=(0, 3))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(
        "execution time",
        Text.assemble(
            *_pairs(
                ("P50", execution["p50_seconds"]),
                ("P95", execution["p95_seconds"]),
                ("P99", execution["p99_seconds"]),
                ("max", execution["max_seconds"]),
            ),
            (f"avg {format_duration(execution.get('avg_seconds'))}", "dim"),
        ),
    )
    rate = Text.assemble(
        rate_text(success["rate"]),
        f"  {success['completed']:,} completed of {success['total']:,}",
        (f"  ({success['failed']:,} failed", "dim"),
        (f", {success['timed_out']:,} of them timed out" if success.get("timed_out") else "", "dim"),
        (f"; {success['cancelled']:,} cancelled, not counted)" if success.get("cancelled") else ")", "dim"),
    )
    grid.add_row("success rate", rate)
    grid.add_row(
        "usage",
        f"{compact(usage['input_tokens'])} tokens in, {compact(usage['output_tokens'])} out, "
        f"{money(usage['cost_usd'])}",
    )
    return grid


def _pairs(*figures: tuple[str, float | None]) -> list[tuple[str, str] | str]:
    out: list[tuple[str, str] | str] = []
    for label, seconds in figures:
        out += [(f"{label} ", "dim"), (format_duration(seconds) or "–", "bold"), "   "]
    return out


def breakdown(title: str, groups: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
    table.title = Text(f"by {title}", style="bold")
    table.add_column(title)
    for column in ("tasks", "avg", "P50", "P95", "success", "tokens", "cost"):
        table.add_column(column, justify="right")
    for name, g in groups.items():
        table.add_row(
            Text(name, style="dim" if name == "(none)" else ""),
            f"{g['count']:,}",
            format_duration(g["avg_duration"]),
            format_duration(g["p50_seconds"]),
            format_duration(g["p95_seconds"]),
            rate_text(g["success_rate"]),
            compact(g.get("input_tokens", 0) + g.get("output_tokens", 0)),
            money(g["cost_usd"]),
        )
    return table


def daily_chart(days: Sequence[Mapping[str, Any]]) -> RenderableType:
    """Two sparklines, oldest day first: tasks a day (scaled to the busiest) and success rate (0–100%)."""
    most = max((d["runs"] for d in days), default=0)
    runs = Text()
    for d in days:
        if d["runs"]:
            runs.append(_BLOCKS[min(7, d["runs"] * 8 // most)], style="cyan")
        else:
            runs.append("·", style="dim")
    success = Text()
    rates = [d["success_rate"] for d in days if d["success_rate"] is not None]
    for d in days:
        rate = d["success_rate"]
        if rate is None:
            success.append("·", style="dim")
        else:
            success.append(_BLOCKS[min(7, int(rate * 8))], style=_rate_style(rate))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_column(style="dim")
    grid.add_row("tasks", runs, f"busiest {most:,} a day")
    span = f"{min(rates):.0%}–{max(rates):.0%}" if rates else "no finished tasks"
    grid.add_row("success", success, span)
    title = Text(f"last {len(days)} days  {days[0]['date']} → {days[-1]['date']}", style="bold")
    return Group(title, grid)


def rate_text(rate: float | None) -> Text:
    if rate is None:
        return Text("–", style="dim")
    return Text(f"{rate:.1%}", style=_rate_style(rate))


def _rate_style(rate: float) -> str:
    return "green" if rate >= 0.9 else "yellow" if rate >= 0.7 else "red"


def compact(n: int | float) -> str:
    """Token counts: 9,876 / 12.3k / 4.2M / 1.1B."""
    n = int(n)
    if n >= 10**9:
        return f"{n / 10**9:.1f}B"
    if n >= 10**6:
        return f"{n / 10**6:.1f}M"
    if n >= 10**4:
        return f"{n / 10**3:.1f}k"
    return f"{n:,}"


def money(usd: float) -> str:
    if not usd:
        return "$0"
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def watch_metrics(console: Console, frame: Callable[[], RenderableType], interval: float = 2.0) -> None:
    """Redraw ``frame()`` every ``interval`` seconds until Ctrl-C, which ends it quietly."""
    try:
        with Live(frame(), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return
