"""The registry commands as a user types them: create, list, show, update, delete, enable, templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows, store_at

ONE = "name: one\nstages:\n  - {name: a, run: 'echo v1'}\n"
ONE_V2 = "name: one\nstages:\n  - {name: a, run: 'echo v2'}\n"


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    path = tmp_path / "draft.yaml"
    path.write_text(ONE)
    return path


def test_create_copies_validates_and_registers_version_1(workspace: Path, draft: Path) -> None:
    result = invoke("pipeline", "create", str(draft))
    assert result.exit_code == 0, result.output
    assert "created pipeline one (version 1) in pipelines.d/one.yaml" in result.output
    assert (workspace / "pipelines.d/one.yaml").read_text() == ONE
    assert rows(workspace / "orchestrate.db", "select pipeline, version from pipeline_versions") == [
        ("one", 1)
    ]


def test_create_refuses_a_name_clash_and_changes_nothing(workspace: Path, draft: Path) -> None:
    assert invoke("pipeline", "create", str(draft)).exit_code == 0
    draft.write_text(ONE_V2)
    result = invoke("pipeline", "create", str(draft))
    assert result.exit_code == 2
    assert "pipeline one already exists (pipelines.d/one.yaml)" in result.output
    assert "orchestrate pipeline update one" in result.output
    assert (workspace / "pipelines.d/one.yaml").read_text() == ONE


def test_create_of_a_missing_or_invalid_file(workspace: Path, tmp_path: Path) -> None:
    missing = invoke("pipeline", "create", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "nope.yaml: no such file" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstages: []\n")
    result = invoke("pipeline", "create", str(bad))
    assert result.exit_code == 2 and "stages: no stages" in result.output
    assert list((workspace / "pipelines.d").iterdir()) == []


def test_update_makes_a_new_version_and_runs_keep_theirs(workspace: Path, draft: Path) -> None:
    invoke("pipeline", "create", str(draft))
    assert invoke("pipeline", "run", "one").exit_code == 0
    draft.write_text(ONE_V2)
    result = invoke("pipeline", "update", "one", str(draft))
    assert result.exit_code == 0 and "updated one: version 2" in result.output
    assert invoke("pipeline", "update", "one", str(draft)).output.strip() == "one unchanged (version 2)"
    assert invoke("pipeline", "run", "one").exit_code == 0
    versions = rows(workspace / "orchestrate.db", "select version from runs order by created_at")
    assert versions == [(1,), (2,)]
    other = draft.parent / "other.yaml"
    other.write_text(ONE.replace("name: one", "name: two"))
    clash = invoke("pipeline", "update", "one", str(other))
    assert clash.exit_code == 2 and "defines pipeline two, not one" in clash.output


def test_hand_edits_are_picked_up_and_an_invalid_edit_keeps_the_last_version(
    pipeline_file, workspace: Path
) -> None:
    path = pipeline_file("one", ONE)
    assert invoke("pipeline", "run", "one").exit_code == 0
    path.write_text(ONE_V2)
    listed = json.loads(invoke("pipeline", "list", "--json").output)
    assert [(p["name"], p["version"], p["error"]) for p in listed] == [("one", 2, None)]
    path.write_text("name: one\nstages:\n  - {name: a, run: 'echo v3', timeout: soon}\n")
    table = invoke("pipeline", "list")
    assert table.exit_code == 0
    assert 'pipelines.d/one.yaml:3:40: stages[0].timeout: "soon" is not a duration' in table.output
    broken = invoke("pipeline", "run", "one")
    assert broken.exit_code == 2 and "one.yaml:3:40" in broken.output
    ran = invoke("pipeline", "run", "one", "--version", "2", "--json")
    assert ran.exit_code == 0, ran.output
    record = json.loads(ran.output)
    assert record["version"] == 2
    log = Path(record["stages"][0]["attempts"][0]["log_path"])
    assert log.read_text() == "v2\n"
    missing = invoke("pipeline", "run", "one", "--version", "9")
    assert missing.exit_code == 2 and "pipeline one has no version 9 (registered: 1, 2)" in missing.output


def test_list_shows_last_run_and_success_rate(pipeline_file, workspace: Path) -> None:
    pipeline_file("ok", "name: ok\nstages:\n  - {name: a, run: 'true'}\n")
    pipeline_file(
        "flaky", "name: flaky\ntriggers: [{cron: '0 * * * *'}]\nstages:\n  - {name: a, run: 'exit 1'}\n"
    )
    invoke("pipeline", "run", "ok")
    invoke("pipeline", "run", "flaky")
    listed = {p["name"]: p for p in json.loads(invoke("pipeline", "list", "--json").output)}
    assert listed["ok"]["success_rate"] == 1.0 and listed["ok"]["last_run"]["status"] == "succeeded"
    assert listed["flaky"]["success_rate"] == 0.0 and listed["flaky"]["triggers"][0]["cron"] == "0 * * * *"
    table = invoke("pipeline", "list").output
    assert "cron 0 * * * *" in table and "100% of 1" in table and "0% of 1" in table


def test_show_prints_the_definition_and_a_summary(pipeline_file, workspace: Path) -> None:
    path = pipeline_file("one", ONE)
    invoke("pipeline", "list")
    path.write_text(ONE_V2)
    shown = invoke("pipeline", "show", "one")
    assert shown.exit_code == 0
    assert (
        "version 2 of 2" in shown.output
        and "echo v2" in shown.output
        and "1 stages in 1 levels" in shown.output
    )
    old = json.loads(invoke("pipeline", "show", "one", "--version", "1", "--json").output)
    assert old["version"] == 1 and old["text"] == ONE and old["levels"] == [["a"]]
    unknown = invoke("pipeline", "show", "nope")
    assert unknown.exit_code == 2 and 'unknown pipeline "nope"' in unknown.output


def test_disable_blocks_manual_runs_unless_forced(pipeline_file, workspace: Path) -> None:
    pipeline_file("one", ONE)
    assert invoke("pipeline", "disable", "one").output.strip() == "one disabled"
    refused = invoke("pipeline", "run", "one")
    assert refused.exit_code == 2 and "pipeline one is disabled" in refused.output
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]
    assert invoke("pipeline", "run", "one", "--force").exit_code == 0
    assert json.loads(invoke("pipeline", "list", "--json").output)[0]["enabled"] is False
    invoke("pipeline", "enable", "one")
    assert invoke("pipeline", "run", "one").exit_code == 0


def test_delete_keeps_history_and_needs_confirmation(pipeline_file, workspace: Path) -> None:
    pipeline_file("one", ONE)
    invoke("pipeline", "run", "one")
    unconfirmed = invoke("pipeline", "delete", "one")
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    assert (workspace / "pipelines.d/one.yaml").exists()
    result = invoke("pipeline", "delete", "one", "--yes")
    assert result.exit_code == 0, result.output
    assert not (workspace / "pipelines.d/one.yaml").exists()
    assert json.loads(invoke("pipeline", "list", "--json").output) == []
    history = json.loads(invoke("pipeline", "history", "one", "--json").output)
    assert [h["status"] for h in history] == ["succeeded"]
    gone = invoke("pipeline", "delete", "one", "--yes")
    assert gone.exit_code == 2 and 'unknown pipeline "one"' in gone.output


def test_delete_refuses_while_a_run_is_active(pipeline_file, workspace: Path) -> None:

    pipeline_file("one", ONE)
    invoke("pipeline", "run", "one")
    with store_at(workspace) as store:
        [run] = store.history("one")
        version = store.version("one")
        assert version is not None
        store.create_run(
            "01zzzzzzzzzzzzzz", "one", version.version, version.digest, {}, ["a"], run.created_at + 1
        )
    result = invoke("pipeline", "delete", "one", "--yes")
    assert result.exit_code == 2 and "has 1 active run(s): 01zzzzzzzzzzzzzz" in result.output
    assert (workspace / "pipelines.d/one.yaml").exists()


def test_templates_list_and_init(workspace: Path) -> None:
    listed = json.loads(invoke("pipeline", "templates", "--json").output)
    assert {t["name"] for t in listed} >= {"ci", "cd", "release", "security", "ticket-work", "discovery"}
    assert all(t["description"] for t in listed)
    made = invoke("pipeline", "init", "cd", "--name", "deploy-web")
    assert made.exit_code == 0, made.output
    text = (workspace / "pipelines.d/deploy-web.yaml").read_text()
    assert "name: deploy-web" in text
    assert invoke("pipeline", "validate", "pipelines.d/deploy-web.yaml").exit_code == 0
    again = invoke("pipeline", "init", "cd", "--name", "deploy-web")
    assert again.exit_code == 2 and "already exists" in again.output
    unknown = invoke("pipeline", "init", "cdd")
    assert unknown.exit_code == 2 and 'did you mean "cd"?' in unknown.output
