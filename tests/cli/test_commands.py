"""init, validate, graph and help texts, driven as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrate.cli.app import app
from tests.cli.helpers import invoke


def test_init_creates_a_workspace_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "myspace")
    assert result.exit_code == 0, result.output
    ws = tmp_path / "myspace"
    for name in ("orchestrate.yaml", "pipelines.d/hello.yaml", "checkpoints", "logs"):
        assert (ws / name).exists(), name
    monkeypatch.chdir(ws)
    run = invoke("pipeline", "run", "hello")
    assert run.exit_code == 0, run.output
    again = invoke("init", ".")
    assert again.exit_code == 0 and "nothing created" in again.output


def test_no_workspace_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATE_HOME", raising=False)
    result = invoke("pipeline", "run", "x")
    assert result.exit_code == 2
    assert "no workspace here" in result.output and "orchestrate init" in result.output


@pytest.mark.sqlite_only
def test_workspace_is_found_upward(pipeline_file, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline_file("up", "name: up\nstages:\n  - {name: a, run: 'true'}\n")
    (workspace / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(workspace / "deep" / "er")
    assert invoke("pipeline", "run", "up").exit_code == 0
    assert (workspace / "orchestrate.db").exists()


def test_validate_reports_ok_and_errors(pipeline_file, workspace: Path) -> None:
    good = pipeline_file("good", "name: good\nstages:\n  - {name: a, run: 'true'}\n")
    bad = pipeline_file("bad", "name: bad\nstages:\n  - {name: a, run: 'true', depends_on: [b]}\n")
    result = invoke("pipeline", "validate", str(good), str(bad))
    assert result.exit_code == 2
    assert "good.yaml: good, 1 stages" in result.output
    assert 'bad.yaml:3:41: stages[0].depends_on[0]: unknown stage "b"' in result.output
    as_json = json.loads(invoke("pipeline", "validate", str(good), str(bad), "--json").output)
    assert [r["valid"] for r in as_json] == [True, False]


def test_validate_defaults_to_pipelines_d(pipeline_file, workspace: Path) -> None:
    pipeline_file("one", "name: one\nstages:\n  - {name: a, run: 'true'}\n")
    result = invoke("pipeline", "validate")
    assert result.exit_code == 0 and "one" in result.output


def test_graph_formats(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "g",
        """
        name: g
        stages:
          - {name: build, run: "true"}
          - {name: test, run: "true", parallel_with: build}
          - {name: ship, run: "true", depends_on: [build, test]}
        """,
    )
    text = invoke("pipeline", "graph", "g")
    assert text.exit_code == 0
    assert "level 1:" in text.output and "ship  ← build, test" in text.output
    mermaid = invoke("pipeline", "graph", "g", "--format", "mermaid").output
    assert mermaid.startswith("flowchart TD") and "s0 --> s2" in mermaid and "s1 --> s2" in mermaid
    dot = invoke("pipeline", "graph", "g", "--format", "dot").output
    assert '"build" -> "ship";' in dot
    data = json.loads(invoke("pipeline", "graph", "g", "--format", "json").output)
    assert data["levels"] == [["build", "test"], ["ship"]]


def _commands(typer_app, prefix=()):  # type: ignore[no-untyped-def]
    for info in typer_app.registered_commands:
        yield (*prefix, info.name or info.callback.__name__)
    for group in typer_app.registered_groups:
        yield from _commands(group.typer_instance, (*prefix, group.name))


@pytest.mark.parametrize("command", list(_commands(app)))
def test_every_command_has_help_with_an_example_and_is_in_readme(command: tuple[str, ...]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"orchestrate {' '.join(command)}" in readme
