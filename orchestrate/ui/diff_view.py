"""``pipeline diff`` as a table: one row per stage, A beside B, what differs highlighted."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrate.services.diff import RunDiff
from orchestrate.ui.text import format_duration


def _cell(facts: dict[str, Any] | None, key: str) -> str:
    if facts is None:
        return "—"
    value = facts.get(key)
    if key == "duration_seconds":
        return format_duration(value)
    if key == "outputs":
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) if value else ""
    if key == "cost_usd" and value is not None:
        return f"${float(value):.4f}"
    return "" if value is None else str(value)


FACTS = (
    "status",
    "duration_seconds",
    "attempts",
    "outputs",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "model",
)


def diff_view(diff: RunDiff, every: bool) -> RenderableType:
    a, b = diff.a, diff.b
    header = Text.assemble(
        ("A ", "bold"),
        f"{a['id']} ({a['status']}, v{a['version']})   ",
        ("B ", "bold"),
        f"{b['id']} ({b['status']}, v{b['version']})",
    )
    if a["variables"] != b["variables"]:
        header.append(f"\nvariables: A {a['variables']}  B {b['variables']}", style="yellow")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("stage", "what", "A", "B"):
        table.add_column(column, overflow="fold")
    shown = 0
    for stage in diff.stages:
        if not (every or stage.changed):
            continue
        shown += 1
        keys = [k for k in FACTS if every or k in stage.changed] or ["status"]
        if "presence" in stage.changed:
            keys = ["status"]
        for i, key in enumerate(keys):
            style = "yellow" if key in stage.changed or "presence" in stage.changed else ""
            table.add_row(
                Text(stage.name) if i == 0 else "",
                key.replace("_seconds", ""),
                Text(_cell(dict(stage.a) if stage.a else None, key), style=style),
                Text(_cell(dict(stage.b) if stage.b else None, key), style=style),
            )
    if not shown:
        return Group(
            header, Text("no stage differs in status, outputs, tokens or cost (--all shows every stage)")
        )
    return Group(header, table)
