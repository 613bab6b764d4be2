"""``orchestrate experiment list|report``: rendered from the same JSON ``--json`` prints."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrate.ui.text import format_duration

EMPTY = (
    "no experiments yet: declare experiments: in a pipeline (see README, Experiments and budgets),\n"
    "then run it: orchestrate pipeline run NAME"
)


def _table(*columns: str, right: Sequence[str] = ()) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", no_wrap=True)
    return table


def list_view(rows: Sequence[Mapping[str, Any]], now: float | None = None) -> RenderableType:
    if not rows:
        return Text(EMPTY)
    at = time.time() if now is None else now
    table = _table(
        "pipeline", "experiment", "variant", "runs", "succeeded", "last run", right=("runs", "succeeded")
    )
    for r in rows:
        last = r["last_run_at"]
        table.add_row(
            r["pipeline"],
            r["experiment"],
            r["variant"],
            str(r["runs"]),
            str(r["succeeded"]),
            f"{format_duration(at - last)} ago" if last else "never",
        )
    return table


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _seconds(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _p(test: Mapping[str, Any]) -> str:
    p = test["p_value"]
    shown = "not computed" if p is None else ("p<0.001" if p < 0.001 else f"p={p:.3f}")
    note = f" ({test['note']})" if test.get("note") else ""
    return f"{test['test'].replace('_', ' ')}: {shown}{note}"


def report_view(data: Mapping[str, Any]) -> RenderableType:
    where = f" (pipeline {data['pipeline']})" if data["pipeline"] else ""
    head = Text(f"experiment {data['experiment']}{where}", style="bold")
    table = _table(
        "variant",
        "runs",
        "success",
        "95% CI",
        "P50",
        "P95",
        "mean tokens",
        "mean cost",
        right=("runs", "success", "P50", "P95", "mean tokens", "mean cost"),
    )
    for v in data["variants"]:
        lo, hi = v["success_rate_ci95"]
        table.add_row(
            v["name"],
            str(v["runs"]) + (f" (+{v['not_compared']})" if v["not_compared"] else ""),
            _num(v["success_rate"], ".2f"),
            f"{lo:.2f}–{hi:.2f}" if v["runs"] else "-",
            _seconds(v["p50_seconds"]),
            _seconds(v["p95_seconds"]),
            _num(v["mean_tokens"], ",.0f"),
            "-" if v["mean_cost_usd"] is None else f"${v['mean_cost_usd']:.4f}",
        )
    tests = data["tests"]
    lines = Text(f"success: {_p(tests['success'])}\nduration: {_p(tests['duration'])}", style="dim")
    verdict = Text(data["verdict"], style="bold")
    parts: list[RenderableType] = [head, table, lines, verdict]
    if any(v["not_compared"] for v in data["variants"]):
        parts.append(Text("(+N): cancelled or unfinished runs, not compared", style="dim"))
    return Group(*parts)
