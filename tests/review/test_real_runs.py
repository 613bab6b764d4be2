"""The review over runs the engine really ran: failures and timeouts as it records them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.cli.helpers import invoke, rows


def test_review_finds_repeated_failures_and_timeouts_of_real_runs(
    workspace: Path, pipeline_file: Callable[[str, str], Path]
) -> None:
    pipeline_file(
        "flaky",
        """
        name: flaky
        stages:
          - {name: build, run: "true"}
          - {name: test, run: "exit 1"}
        """,
    )
    pipeline_file(
        "slow",
        """
        name: slow
        stages:
          - {name: hang, run: "sleep 5", timeout: 300ms}
        """,
    )
    for _ in range(3):
        assert invoke("pipeline", "run", "flaky", "--plain").exit_code == 1
        assert invoke("pipeline", "run", "slow", "--plain").exit_code == 1
    db = workspace / "orchestrate.db"
    flaky = [r for (r,) in rows(db, "select id from runs where pipeline = 'flaky' order by created_at desc")]
    slow = {r for (r,) in rows(db, "select id from runs where pipeline = 'slow'")}
    result = invoke("review", "--json")
    assert result.exit_code == 0, result.output
    found = {f["fingerprint"]: f for f in json.loads(result.output)["findings"]}
    assert found["repeated_failure:flaky/test"]["evidence"]["runs"] == flaky
    assert found["repeated_failure:flaky/test"]["severity"] == "high"
    timeouts = found["timeout_pattern:slow/hang"]["evidence"]
    assert set(timeouts["runs"]) == slow
    assert (timeouts["timed_out"], timeouts["attempts"], timeouts["ratio"]) == (3, 3, 1.0)
    assert "repeated_failure:flaky/build" not in found
