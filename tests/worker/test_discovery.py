"""The discovery template (issue 11): offline end to end, from samples to the pipeline it starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows
from tests.worker.helpers import wait_for

BUILD = """
name: build-idea
variables: {idea: ""}
triggers:
  - event: discovery.picked
    variables: {idea: "${event.idea.problem}"}
stages:
  - {name: start, run: "echo building ${idea} > built.txt"}
"""


def test_discovery_collects_ranks_and_starts_the_pipeline_of_the_top_pick(
    pipeline_file, workspace: Path
) -> None:
    assert invoke("pipeline", "init", "discovery").exit_code == 0
    pipeline_file("build-idea", BUILD)
    (workspace / "mine.jsonl").write_text(
        json.dumps(
            {"title": "Invoices by hand", "problem": "typing invoices", "quote": "I hate it", "engagement": 3}
        )
        + "\nnot json\n"
    )
    result = invoke("pipeline", "run", "discovery", "--var", "sources=builtin:samples,mine.jsonl", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    folder = workspace / "data" / "discovery" / record["id"]
    ranked = json.loads((folder / "ranked.json").read_text())
    assert [i["total"] for i in ranked] == sorted((i["total"] for i in ranked), reverse=True)
    assert ranked[0]["problem"] == "reconciling bank statements by hand" and ranked[0]["mentions"] == 3
    assert "typing invoices" in [i["problem"] for i in ranked]  # the local file counted too
    digest = (folder / "digest.md").read_text()
    assert digest.startswith("# Discovery digest: 8 signals, 5 problems")
    assert "1. **reconciling bank statements by hand**" in digest
    log = (workspace / "logs" / record["id"] / "collect.log").read_text()
    assert "mine.jsonl:2: not JSON" in log
    # The pick emitted discovery.picked, which started build-idea with the top idea.
    stages = {s["name"]: s for s in record["stages"]}
    event_id = stages["pick"]["outputs"]["event"]
    db = workspace / "orchestrate.db"
    assert rows(db, "SELECT name FROM events WHERE id = ?", event_id) == [("discovery.picked",)]
    built = wait_for(
        lambda: (workspace / "built.txt").exists() and (workspace / "built.txt").read_text(), 15.0
    )
    assert built == "building reconciling bank statements by hand\n"
    assert rows(db, "SELECT pipeline, triggered_by FROM runs WHERE event_id = ?", event_id) == [
        ("build-idea", "event:discovery.picked")
    ]


def test_discovery_runs_every_six_hours_and_never_overlaps(workspace: Path) -> None:
    assert invoke("pipeline", "init", "discovery").exit_code == 0
    listed = invoke("schedule", "list", "--now", "2030-01-01T01:00:00")
    assert "discovery  0 */6 * * *" in listed.output
    assert "next: 2030-01-01 06:00" in listed.output


def test_a_failing_source_fails_collect_naming_it(workspace: Path) -> None:
    assert invoke("pipeline", "init", "discovery").exit_code == 0
    result = invoke("pipeline", "run", "discovery", "--var", "sources=nowhere/*.jsonl", "--json")
    assert result.exit_code == 1
    record = json.loads(result.output)
    log = (workspace / "logs" / record["id"] / "collect.log").read_text()
    assert "source 'nowhere/*.jsonl': no such file" in log


@pytest.mark.parametrize(
    ("var", "stage", "message"),
    [
        ("top=0", "rank", "variable top: '0' must be at least 1"),
        ("top=abc", "rank", "variable top: 'abc' is not a whole number"),
        ("min_score=high", "pick", "variable min_score: 'high' is not a number"),
        (
            "sources=cmd:nosuchcmd",
            "collect",
            "variable sources: 'cmd:nosuchcmd': no such command 'nosuchcmd'",
        ),
    ],
)
def test_a_bad_variable_fails_its_stage_in_one_line(
    workspace: Path, var: str, stage: str, message: str
) -> None:
    assert invoke("pipeline", "init", "discovery").exit_code == 0
    result = invoke("pipeline", "run", "discovery", "--var", var, "--json")
    assert result.exit_code == 1, result.output
    record = json.loads(result.stdout)
    log = (workspace / "logs" / record["id"] / f"{stage}.log").read_text()
    assert message in log and "Traceback" not in log


def test_recency_counts_from_the_run_s_day(workspace: Path) -> None:
    from datetime import date

    from orchestrate.discovery import score

    old = [{"title": "t", "date": "2020-01-01"}]
    assert score(old, date(2020, 1, 1))["recency"] == 5.0
    assert score(old, date(2021, 1, 1))["recency"] == 0.0  # a year old when the run happens
    assert score([{"title": "t", "date": "2020-01-02"}], date(2020, 1, 1))["recency"] == 5.0  # not above 5
