"""Budget lines (issue 10) for the live table, ``pipeline status`` and the plain reporter; no Rich."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrate.domain.events import BudgetChecked


def _money(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def budget_line(check: BudgetChecked) -> str:
    """``budget run: $0.8000 of $0.5000, 1,200 of 2,000,000 tokens; forecast for b: ... — exceeded: halt``."""
    label = "run" if check.scope == "run" else f"stage {check.scope}"
    parts = []
    if check.limit_cost_usd is not None:
        parts.append(f"{_money(check.spent_cost_usd)} of {_money(check.limit_cost_usd)}")
    if check.limit_tokens is not None:
        parts.append(f"{check.spent_tokens:,} of {check.limit_tokens:,} tokens")
    text = f"budget {label}: spent {', '.join(parts)}"
    if check.forecast_note:
        text += f"; forecast for {check.stage}: {check.forecast_note}"
    if check.exceeded:
        text += f" — exceeded, on_exceed: {check.action}"
    return text


def budget_lines(budgets: Mapping[str, BudgetChecked]) -> list[str]:
    """The latest check of each scope, the run's first."""
    return [budget_line(budgets[k]) for k in sorted(budgets, key=lambda k: (k != "run", k))]
