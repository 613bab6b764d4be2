"""orchestrate goal add|list|show|link|unlink|remove, driven as a user types them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from orchestrate.domain.status import RunStatus
from tests.cli.helpers import invoke, rows, store_at
from tests.review.helpers import DAY, add_run

TOMORROW = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")


@pytest.fixture
def specs(pipeline_file: Callable[[str, str], Path]) -> None:
    pipeline_file("spec-a", "name: spec-a\nlabels: [specs]\nstages:\n  - name: work\n    run: 'true'\n")
    pipeline_file("ci", "name: ci\nstages:\n  - name: work\n    run: 'true'\n")


def test_add_list_show_link_unlink_remove(workspace: Path, specs: None) -> None:
    with store_at(workspace) as store:
        for d in (1, 2):
            add_run(store, "spec-a", at=time.time() - d * DAY, status=RunStatus.SUCCEEDED)
    since = (datetime.now() - timedelta(days=5)).strftime("%Y-%m-%d")
    result = invoke("goal", "add", "ship", "--metric", "succeeded_runs", "--target", "4", "--label", "specs",
                    "--since", since, "--by", TOMORROW)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added goal ship" in result.output
    result = invoke("goal", "list")
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("ship"))
    assert "██████████" in line and "50%" in line and "behind" in line and "label:specs → spec-a" in line
    data = json.loads(invoke("goal", "show", "ship", "--json").output)
    assert (data["current"], data["target"], data["progress"], data["status"]) == (2, 4, 0.5, "behind")
    assert data["pipelines"] == ["spec-a"] and len(data["evidence"]["runs"]) == 2
    # linking ci adds nothing yet; unlinking the label leaves ci alone
    assert invoke("goal", "link", "ship", "--pipeline", "ci").exit_code == 0
    result = invoke("goal", "unlink", "ship", "--label", "specs")
    assert result.exit_code == 0 and "links pipeline:ci" in result.output
    assert json.loads(invoke("goal", "show", "ship", "--json").output)["current"] == 0
    result = invoke("goal", "show", "ship")
    assert result.exit_code == 0 and "succeeded_runs → 4" in result.output and "pipeline:ci" in result.output
    assert invoke("goal", "remove", "ship").exit_code == 0
    assert rows(workspace / "orchestrate.db", "select count(*) from goals") == [(0,)]
    assert rows(workspace / "orchestrate.db", "select count(*) from goal_links") == [(0,)]
    assert "no goals yet" in invoke("goal", "list").output


def test_targets_in_their_units(workspace: Path, specs: None) -> None:
    for name, metric, target, stored in (
        ("rate", "success_rate", "95%", 0.95),
        ("rate2", "success_rate", "0.8", 0.8),
        ("fast", "p95_duration", "10m", 600.0),
        ("cheap", "cost", "$0.25", 0.25),
    ):
        result = invoke("goal", "add", name, "--metric", metric, "--target", target, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["target"] == stored
    listed = json.loads(invoke("goal", "list", "--json").output)
    assert [g["name"] for g in listed] == ["rate", "rate2", "fast", "cheap"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "g", "--metric", "speed", "--target", "1"], '--metric "speed": not one of succeeded_runs'),
        (["add", "g", "--metric", "success_rate", "--target", "120%"], "hint: a share of runs"),
        (["add", "g", "--metric", "succeeded_runs", "--target", "2.5"], '--target "2.5": not a valid target'),
        (
            ["add", "g", "--metric", "p95_duration", "--target", "10 minutes"],
            "hint: a duration, e.g. --target 10m",
        ),
        (
            ["add", "g", "--metric", "cost", "--target", "1", "--by", "2020-01-01"],
            '--by "2020-01-01": already past',
        ),
        (["add", "g", "--metric", "cost", "--target", "1", "--by", "soon"], '--by "soon": not a date'),
        (
            ["add", "g", "--metric", "cost", "--target", "1", "--pipeline", "nope"],
            '--pipeline "nope": unknown pipeline',
        ),
        (["add", "Bad Name", "--metric", "cost", "--target", "1"], 'goal name "Bad Name"'),
        (["show", "nope"], 'unknown goal "nope"'),
        (["link", "nope", "--label", "x"], 'unknown goal "nope"'),
        (["link", "g0"], "nothing to link"),
        (["remove", "nope"], 'unknown goal "nope"'),
    ],
)
def test_mistakes_are_one_line_errors(workspace: Path, specs: None, args: list[str], message: str) -> None:
    assert invoke("goal", "add", "g0", "--metric", "cost", "--target", "1").exit_code == 0
    result = invoke("goal", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert rows(workspace / "orchestrate.db", "select name from goals") == [("g0",)]


def test_a_duplicate_goal_is_refused_and_the_first_kept(workspace: Path, specs: None) -> None:
    assert invoke("goal", "add", "g", "--metric", "cost", "--target", "1").exit_code == 0
    result = invoke("goal", "add", "g", "--metric", "succeeded_runs", "--target", "3")
    assert result.exit_code == 2 and 'goal "g" already exists' in result.output
    assert rows(workspace / "orchestrate.db", "select metric, target from goals") == [("cost", 1.0)]
