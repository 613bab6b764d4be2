"""The discovery template (issue 11): offline end to end, from samples to the pipeline it starts."""

from __future__ import annotations

import json
from pathlib import Path

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
