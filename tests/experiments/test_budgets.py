"""Budgets: forecast from history, on_exceed halt | continue | approval, shown in status (issue 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.helpers import invoke, rows

SPEND = """
name: spend
variables: {cost: "0.4", tokens: "0"}
budget: {cost_usd: 0.5, on_exceed: ON_EXCEED}
stages:
  - {name: one, run: 'echo cost_usd=${cost} >> $ORCHESTRATE_OUTPUT'}
  - {name: two, run: 'echo cost_usd=${cost} >> $ORCHESTRATE_OUTPUT'}
  - {name: three, run: 'echo three ran'}
"""


def _last_run(db: Path) -> str:
    return str(rows(db, "select id from runs order by id desc limit 1")[0][0])


def _budget_events(db: Path, run_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        json.loads(p)
        for (p,) in rows(
            db, "select payload from run_events where run_id = ? and kind = 'budget_checked'", run_id
        )
    ]


def test_halt_on_spend_then_on_forecast(pipeline_file, workspace: Path) -> None:
    pipeline_file("spend", SPEND.replace("ON_EXCEED", "halt"))
    db = workspace / "orchestrate.db"
    # No history: no forecast, said so; the spend (0.8 after two) stops the run before three.
    first = invoke("pipeline", "run", "spend", "--plain")
    assert first.exit_code == 1
    assert "run budget exceeded (spent): cost $0.8000 > $0.5000" in first.output
    run1 = _last_run(db)
    assert rows(db, "select status, reason from runs where id = ?", run1)[0][0] == "failed"
    assert rows(db, "select name, status from stages where run_id = ? order by position", run1) == [
        ("one", "succeeded"),
        ("two", "succeeded"),
        ("three", "pending"),
    ]
    checks = _budget_events(db, run1)
    assert checks[0]["forecast_note"] == "none: no history for one × any model"
    # Now history says two costs 0.4 (P95 of one attempt): 0.4 spent + 0.4 forecast > 0.5 before it starts.
    second = invoke("pipeline", "run", "spend", "--plain")
    assert second.exit_code == 1
    run2 = _last_run(db)
    stages = dict(rows(db, "select name, status from stages where run_id = ?", run2))
    assert stages == {"one": "succeeded", "two": "failed", "three": "pending"}
    reason = rows(db, "select reason from stages where run_id = ? and name = 'two'", run2)[0][0]
    assert reason == (
        "budget: run budget exceeded (spent + forecast for two): cost $0.8000 > $0.5000 "
        "[forecast $0.4000: P95 of 1 attempt of two × any model]"
    )
    assert not (workspace / "logs" / run2 / "two.out").exists()  # its command never ran
    status = invoke("pipeline", "status", run2)
    assert status.exit_code == 0
    assert (
        "budget run: spent $0.4000 of $0.5000; forecast for two: $0.4000: P95 of 1 attempt" in status.output
    )


def test_forecast_is_the_p95_of_the_stage_history(pipeline_file, workspace: Path) -> None:
    pipeline_file("spend", SPEND.replace("ON_EXCEED", "continue").replace("cost_usd: 0.5", "cost_usd: 100"))
    for cost in range(1, 21):  # twenty runs: two cost 0.01 .. 0.20
        assert invoke("pipeline", "run", "spend", "--plain", "--var", f"cost={cost / 100}").exit_code == 0
    assert invoke("pipeline", "run", "spend", "--plain", "--var", "cost=0").exit_code == 0
    db = workspace / "orchestrate.db"
    check = next(c for c in _budget_events(db, _last_run(db)) if c["stage"] == "two" and c["forecast_note"])
    # Before the last run's two: nearest rank over the 20 earlier attempts (0.01 .. 0.20), the
    # ceil(0.95 * 20) = 19th smallest.
    assert check["forecast_cost_usd"] == 0.19
    assert check["forecast_note"] == "$0.1900: P95 of 20 attempts of two × any model"


def test_continue_records_a_warning_and_goes_on(pipeline_file, workspace: Path) -> None:
    pipeline_file("spend", SPEND.replace("ON_EXCEED", "continue"))
    result = invoke("pipeline", "run", "spend", "--plain")
    assert result.exit_code == 0, result.output
    assert "exceeded, on_exceed: continue" in result.output
    db = workspace / "orchestrate.db"
    run_id = _last_run(db)
    assert rows(db, "select status from runs where id = ?", run_id) == [("succeeded",)]
    warnings = [c for c in _budget_events(db, run_id) if c["exceeded"]]
    assert warnings and all(c["action"] == "continue" for c in warnings)
    shown = invoke("pipeline", "status", run_id).output
    assert (
        "budget run: spent $0.8000 of $0.5000; forecast for three: none: no history for three × any model "
        "— exceeded, on_exceed: continue"
    ) in shown


def test_stage_token_budget(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "tok",
        """
        name: tok
        stages:
          - name: agent
            run: 'echo input_tokens=700 >> $ORCHESTRATE_OUTPUT; echo output_tokens=400 >> $ORCHESTRATE_OUTPUT'
            budget: {tokens: 1000}
          - {name: after, run: 'true'}
        """,
    )
    result = invoke("pipeline", "run", "tok", "--plain")
    assert result.exit_code == 1
    assert "stage agent budget exceeded (spent): tokens 1,100 > 1,000" in result.output
    db = workspace / "orchestrate.db"
    assert rows(db, "select name, status from stages where run_id = ? order by position", _last_run(db)) == [
        ("agent", "succeeded"),
        ("after", "pending"),
    ]


def test_budget_no_longer_refused(pipeline_file) -> None:
    pipeline_file("spend", SPEND.replace("ON_EXCEED", "halt").replace("0.5", "5"))
    result = invoke("pipeline", "run", "spend", "--plain")
    assert result.exit_code == 0, result.output


def test_approval_shows_the_forecast_and_lets_the_run_go_on(pipeline_file, workspace: Path) -> None:
    pipeline_file("spend", SPEND.replace("ON_EXCEED", "continue"))
    assert invoke("pipeline", "run", "spend", "--plain").exit_code == 0  # history: each stage costs 0.4
    pipeline_file("spend", SPEND.replace("ON_EXCEED", "approval"))
    env = {**os.environ, "ORCHESTRATE_USER": "alice"}
    db = workspace / "orchestrate.db"
    argv = [sys.executable, "-m", "orchestrate", "pipeline", "run", "spend", "--plain"]
    # Before two: 0.4 spent + 0.4 forecast > 0.5, so it asks (alice started the run: she may approve);
    # approved once, the run's budget is not asked about again (three goes on).
    proc = subprocess.Popen(
        argv, env=env, cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        request = None
        deadline = time.time() + 30
        while request is None and time.time() < deadline:
            found = rows(db, "select id, stage from approval_requests where status = 'pending'")
            request = found[0] if found else None
            time.sleep(0.1)
        assert request is not None, "no budget approval request opened"
        request_id, stage = request
        assert stage == "two:budget"
        shown = invoke("approval", "show", request_id)
        assert "forecast $0.4000: P95 of" in shown.output
        assert invoke("approval", "approve", request_id, "--as", "alice").exit_code == 0
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    run_id = _last_run(db)
    assert rows(db, "select status from runs where id = ?", run_id) == [("succeeded",)]
    assert rows(db, "select status from stages where run_id = ? and name = 'three'", run_id) == [
        ("succeeded",)
    ]
