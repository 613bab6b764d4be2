"""How a run looks: one table for the live view and for ``pipeline status``, so they agree."""

from __future__ import annotations

import time
from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrate.domain.state import RunState, StageState
from orchestrate.domain.status import RUN_TERMINAL, STAGE_TERMINAL, RunStatus, StageStatus
from orchestrate.domain.usage import stage_usage, total_usage
from orchestrate.ui.budget_text import budget_lines
from orchestrate.ui.text import format_duration

STYLES: dict[str, str] = {
    "pending": "dim",
    "queued": "dim magenta",
    "running": "bold cyan",
    "waiting_approval": "bold magenta",
    "succeeded": "bold green",
    "failed": "bold red",
    "cancelled": "yellow",
    "skipped": "dim cyan",
    "rolled_back": "bold yellow",
}
ICONS: dict[str, str] = {
    "pending": "·",
    "queued": "…",
    "running": "▶",
    "waiting_approval": "⏸",
    "succeeded": "✔",
    "failed": "✘",
    "cancelled": "■",
    "skipped": "↷",
    "rolled_back": "↶",
}


def status_text(status: str, label: str | None = None) -> Text:
    return Text(f"{ICONS.get(status, '?')} {label or status}", style=STYLES.get(status, ""))


def _stage_label(stage: StageState, run_done: bool) -> str:
    if stage.status is StageStatus.PENDING and run_done:
        return "not started"
    return stage.status.value


def _detail(stage: StageState, last_line: str) -> str:
    if stage.status is StageStatus.RUNNING:
        return last_line
    return stage.reason or ""


def run_header(state: RunState, now: float) -> Text:
    text = Text()
    text.append(f"{state.pipeline} ", style="bold")
    text.append(f"run {state.run_id}  ")
    text.append_text(status_text(state.status.value))
    duration = state.duration(now)
    if duration is not None:
        text.append(f"  {format_duration(duration)}")
    if state.reason:
        text.append(f"  ({state.reason})", style=STYLES.get(state.status.value, ""))
    return text


def stage_table(state: RunState, now: float, last_lines: Mapping[str, str] | None = None) -> Table:
    last_lines = last_lines or {}
    done = state.status in RUN_TERMINAL
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("stage", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("attempt", justify="right")
    table.add_column("duration", justify="right", no_wrap=True)
    priced = any(usage(s) != (0, 0, 0.0) for s in state.stages.values())
    if priced:  # agents reported usage: tokens and cost per stage
        table.add_column("tokens", justify="right", no_wrap=True)
        table.add_column("cost", justify="right", no_wrap=True)
    # Wrappable for the layout (so it is the column that shrinks), one line when drawn (its Text).
    table.add_column("detail", overflow="ellipsis", max_width=70)
    group = None
    for stage in state.stages.values():
        base, bracket, rest = stage.name.partition("[")
        label = stage.name
        if bracket and stage.name.endswith("]"):  # a matrix instance: shown under its group
            if base != group:
                group = base
                members = [s for s in state.stages.values() if s.name.startswith(base + "[")]
                done_count = sum(1 for s in members if s.status in STAGE_TERMINAL)
                table.add_row(
                    Text(base, style="bold"), Text(f"matrix {done_count}/{len(members)}", style="dim")
                )
            label = "  [" + rest
        else:
            group = None
        tokens_in, tokens_out, cost = usage(stage)
        money = [
            f"{tokens_in + tokens_out:,}" if tokens_in + tokens_out else "",
            f"${cost:.4f}" if cost else "",
        ]
        table.add_row(
            Text(label),
            status_text(stage.status.value, _stage_label(stage, done)),
            str(stage.attempt) if stage.attempt else "",
            format_duration(stage.duration(now)),
            *(money if priced else []),
            Text(
                _detail(stage, last_lines.get(stage.name, "")), style="dim", no_wrap=True, overflow="ellipsis"
            ),
        )
    # At a narrow width only `detail` gives way (a long budget message must not squeeze the
    # stage name or its status out): every other column keeps its content's width (up to 40).
    for column in table.columns[:-1]:
        widest = max(
            (c.cell_len if isinstance(c, Text) else Text(str(c)).cell_len for c in column.cells), default=0
        )
        column.min_width = min(max(widest, len(str(column.header))), 40)
    return table


def usage(stage: StageState) -> tuple[int, int, float]:
    """(input tokens, output tokens, cost in USD) from the stage's reserved outputs."""
    return stage_usage(stage.outputs)


def counts(state: RunState) -> Text:
    tally: dict[str, int] = {}
    for stage in state.stages.values():
        tally[stage.status.value] = tally.get(stage.status.value, 0) + 1
    text = Text()
    for status, n in sorted(tally.items()):
        if text:
            text.append("  ")
        text.append(f"{n} {status}", style=STYLES.get(status, ""))
    tokens, cost = total_usage(s.outputs for s in state.stages.values())
    if tokens or cost:
        text.append(f"   total: {tokens:,} tokens, ${cost:.4f}", style="bold")
    return text


def run_view(
    state: RunState, now: float | None = None, last_lines: Mapping[str, str] | None = None
) -> RenderableType:
    """The whole run: header, stage table, tally. A pure function of its arguments."""
    at = time.time() if now is None else now
    parts: list[RenderableType] = [run_header(state, at), stage_table(state, at, last_lines), counts(state)]
    if state.budgets:  # budget: of the pipeline or its stages (issue 10)
        over = any(b.exceeded for b in state.budgets.values())
        parts.append(Text("\n".join(budget_lines(state.budgets)), style="bold yellow" if over else "dim"))
    gates = [s for s in state.stages.values() if s.status is StageStatus.WAITING_APPROVAL and s.reason]
    if gates:
        parts.append(Text("\n".join(f"⏸ {s.name}: {s.reason}" for s in gates), style="bold magenta"))
    if state.status is RunStatus.FAILED or state.status is RunStatus.CANCELLED:
        logs = [
            f"  {s.name}: {s.attempts[-1].log_path}"
            for s in state.stages.values()
            if s.status is StageStatus.FAILED and s.attempts
        ]
        if logs:
            parts.append(Text("logs of failed stages:\n" + "\n".join(logs), style="dim"))
    return Group(*parts)


def outputs_text(state: RunState, width: int = 100) -> Text | None:
    """Each stage's outputs, one ``stage: key=value`` line each (long values cut)."""
    lines = []
    for stage in state.stages.values():
        for key, value in stage.outputs.items():
            shown = value.replace("\n", "⏎")
            if len(shown) > width:
                shown = shown[: width - 1] + "…"
            lines.append(f"  {stage.name}: {key}={shown}")
    return Text("outputs:\n" + "\n".join(lines), style="dim") if lines else None


def status_view(
    state: RunState,
    orphaned: bool,
    now: float | None = None,
    *,
    stale: str | None = None,
    overdue: Mapping[str, str] | None = None,
) -> RenderableType:
    """``pipeline status``: the run view, its outputs, what is late, and what to type when its process is gone."""
    parts: list[RenderableType] = [run_view(state, now)]
    outputs = outputs_text(state)
    if outputs is not None:
        parts.append(outputs)
    if stale:
        parts.append(Text(f"⚠ stale: {stale}", style="bold yellow"))
    for stage, why in (overdue or {}).items():
        parts.append(Text(f"⚠ overdue: {stage} is {why}", style="bold yellow"))
    if orphaned:
        parts.append(
            Text(
                f"running (orphaned): no live process is running this run; resume it with: "
                f"orchestrate pipeline resume {state.run_id}",
                style="bold yellow",
            )
        )
    return Group(*parts)
