"""Budget fixes after QA (issue 10): forecasts for real agents, failed attempts' spend, empty budgets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.cli.helpers import invoke, rows

FAKE = str(Path(__file__).parents[1] / "fixtures" / "fake_agent.py")


def _last_run(db: Path) -> str:
    return str(rows(db, "select id from runs order by id desc limit 1")[0][0])


def _budget_events(db: Path, run_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        json.loads(p)
        for (p,) in rows(
            db, "select payload from run_events where run_id = ? and kind = 'budget_checked'", run_id
        )
    ]


def test_forecast_finds_history_of_an_agent_reporting_its_own_model_id(
    pipeline_file, workspace: Path
) -> None:
    # The agent is configured with "sonnet" but reports "claude-sonnet-4" (claude-json usage).
    agents = {
        "claude": {
            "command": [sys.executable, FAKE, "claude-json", "{task}"],
            "usage": "claude-json",
            "model": "sonnet",
        }
    }
    (workspace / "orchestrate.yaml").write_text(json.dumps({"agents": agents}))
    pipeline_file(
        "ag",
        """
        name: ag
        budget: {cost_usd: 10, on_exceed: continue}
        stages:
          - {name: review, agent: claude, task: look}
        """,
    )
    db = workspace / "orchestrate.db"
    assert invoke("pipeline", "run", "ag", "--plain").exit_code == 0
    first = _last_run(db)
    # The stage's outputs keep what the agent reported; the metric row keys on the configured model.
    record = json.loads(invoke("pipeline", "status", first, "--json").output)
    assert record["stages"][0]["outputs"]["model"] == "claude-sonnet-4"
    assert rows(db, "select model, cost_usd from task_metrics where run_id = ?", first) == [
        ("sonnet", 0.0731)
    ]
    assert invoke("pipeline", "run", "ag", "--plain").exit_code == 0
    check = next(c for c in _budget_events(db, _last_run(db)) if c["forecast_note"])
    assert check["forecast_cost_usd"] == 0.0731
    assert check["forecast_note"] == "$0.0731, 1,750 tokens: P95 of 1 attempt of review × sonnet"


def test_failed_attempts_count_against_the_budget_and_in_metrics(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "burn",
        """
        name: burn
        budget: {cost_usd: 0.7}
        stages:
          - name: flaky
            run: 'echo cost_usd=0.3 >> $ORCHESTRATE_OUTPUT; echo tried; exit 1'
            retry: {max: 4, backoff: 0s}
        """,
    )
    db = workspace / "orchestrate.db"
    result = invoke("pipeline", "run", "burn", "--plain")
    assert result.exit_code == 1
    run_id = _last_run(db)
    # Two failed attempts spent 0.6, and the history of failed attempts forecasts 0.3 more:
    # 0.9 > 0.7, so the third is refused and no further attempt runs.
    found = rows(
        db, "select attempt, status, cost_usd from task_metrics where run_id = ? order by attempt", run_id
    )
    assert found == [
        (1, "failed", 0.3),
        (2, "failed", 0.3),
        (3, "failed", None),
    ]
    reason = rows(db, "select reason from stages where run_id = ?", run_id)[0][0]
    assert reason == (
        "budget: run budget exceeded (spent + forecast for flaky): cost $0.9000 > $0.7000 "
        "[forecast $0.3000: P95 of 2 attempts of flaky × any model]"
    )
    log = (workspace / "logs" / run_id / "flaky.log").read_text()
    assert log.count("tried") == 2


def test_status_json_carries_the_budgets_and_variants_the_text_view_shows(
    pipeline_file, workspace: Path
) -> None:
    pipeline_file(
        "spend",
        """
        name: spend
        experiments: {style: {variants: {terse: 1, detailed: 1}}}
        budget: {cost_usd: 0.5, on_exceed: continue}
        stages:
          - {name: one, run: 'echo cost_usd=0.4 >> $ORCHESTRATE_OUTPUT'}
          - {name: two, run: 'echo cost_usd=0.4 >> $ORCHESTRATE_OUTPUT'}
        """,
    )
    assert invoke("pipeline", "run", "spend", "--plain", "--variant", "style=terse").exit_code == 0
    run_id = _last_run(workspace / "orchestrate.db")
    text = invoke("pipeline", "status", run_id).output
    assert "budget run: spent $0.8000 of $0.5000" in text
    record = json.loads(invoke("pipeline", "status", run_id, "--json").output)
    assert record["variants"] == {"style": "terse"}
    run_budget = record["budgets"]["run"]
    assert (run_budget["spent_cost_usd"], run_budget["limit_cost_usd"]) == (0.8, 0.5)
    assert run_budget["exceeded"] is True and run_budget["action"] == "continue"


def test_a_budget_without_a_limit_is_a_validation_error(pipeline_file) -> None:
    pipeline_file(
        "nolimit",
        """
        name: nolimit
        budget: {on_exceed: halt}
        stages:
          - {name: one, run: 'true', budget: {on_exceed: continue, forecast: false}}
          - {name: two, run: 'true', budget: {tokens: 10}}
        """,
    )
    result = invoke("pipeline", "validate", "pipelines.d/nolimit.yaml")
    assert result.exit_code == 2
    assert "nolimit.yaml:2:9: budget: budget sets no limit" in result.output
    assert "stages[0].budget: budget sets no limit" in result.output
    assert "stages[1]" not in result.output
    assert "hint: add cost_usd: DOLLARS and/or tokens: COUNT" in result.output
