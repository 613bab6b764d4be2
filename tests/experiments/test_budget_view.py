"""The live table shows the latest budget check per scope (the same renderer as pipeline status)."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrate.domain.events import BudgetChecked, RunStarted, StageStarted
from orchestrate.domain.state import RunState, fold
from orchestrate.ui.run_view import run_view


def render(renderable: object) -> str:
    console = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_live_table_shows_each_budget_once_latest_first_for_the_run() -> None:
    state = fold(
        RunState.new("r1", "ci", ["a", "b"], 100.0),
        [
            RunStarted("r1", 100.0, 1),
            BudgetChecked(
                "r1", 100.5, "run", "a", 0.0, 0, 5.0, None, None, None, "none: no history for a × sonnet"
            ),
            StageStarted("r1", "a", 1, 101.0, "a.log"),
            BudgetChecked("r1", 102.0, "b", "b", 0.2, 1200, None, 1000, None, None, "", True, "halt", "over"),
            BudgetChecked(
                "r1", 103.0, "run", "b", 1.25, 1200, 5.0, None, 0.4, None, "$0.4000: P95 of 3 attempts"
            ),
        ],
    )
    text = render(run_view(state, now=104.0))
    assert "budget run: spent $1.25 of $5.00; forecast for b: $0.4000: P95 of 3 attempts" in text
    assert "no history" not in text  # replaced by the later check of the same scope
    assert "budget stage b: spent 1,200 of 1,000 tokens — exceeded, on_exceed: halt" in text
    assert text.index("budget run:") < text.index("budget stage b:")


def test_a_long_budget_reason_shrinks_the_detail_not_the_stage_name_at_80_columns() -> None:
    from orchestrate.domain.events import StageFinished
    from orchestrate.domain.status import StageStatus
    from orchestrate.ui.run_view import stage_table

    reason = (
        "budget: run budget exceeded (spent + forecast for implement-feature): cost $0.9000 > $0.7000 "
        "[forecast $0.3000: P95 of 2 attempts of implement-feature × sonnet]"
    )
    state = fold(
        RunState.new("r1", "ci", ["implement-feature", "b"], 100.0),
        [
            RunStarted("r1", 100.0, 1),
            StageStarted("r1", "implement-feature", 1, 101.0, "a.log"),
            StageFinished(
                "r1",
                "implement-feature",
                1,
                102.0,
                StageStatus.FAILED,
                None,
                reason,
                False,
                {"cost_usd": "0.5", "input_tokens": "1000"},
            ),
        ],
    )
    console = Console(record=True, width=80, file=io.StringIO(), color_system=None)
    console.print(stage_table(state, 110.0))
    lines = console.export_text().splitlines()
    assert lines[0].split() == ["stage", "status", "attempt", "duration", "tokens", "cost", "detail"]
    row = lines[1]
    assert row.startswith("implement-feature  ✘ failed") and "1,000  $0.5000  budget: run" in row
    assert row.rstrip().endswith("…") and len(row.rstrip()) <= 80
