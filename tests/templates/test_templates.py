"""The built-in pipeline templates (templates/*.yaml): valid, documented, and `ci` really runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrate.cli.app import app

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
NAMES = ["cd", "ci", "discovery", "release", "security", "ticket-work"]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def template(name: str) -> Path:
    return TEMPLATES / f"{name}.yaml"


def test_the_six_templates_ship_and_nothing_else() -> None:
    assert sorted(p.stem for p in TEMPLATES.glob("*.y*ml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_template_validates(name: str) -> None:
    result = invoke("pipeline", "validate", str(template(name)))
    assert result.exit_code == 0, result.output
    assert f": {name}, " in result.output


@pytest.mark.parametrize("name", NAMES)
def test_template_has_a_header_and_its_name(name: str) -> None:
    text = template(name).read_text(encoding="utf-8")
    lines = text.splitlines()
    # The first line is what `orchestrate pipeline templates` lists.
    assert re.fullmatch(rf"# {re.escape(name)}: \S.{{10,}}", lines[0]), lines[0]
    end = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert end >= 10, "the header comment explains what it does, how to adapt and run it"
    head = "\n".join(lines[:end])
    for words in ("Adapt", "orchestrate pipeline init", "Run it"):
        assert words in head, f"{name}: header does not mention {words!r}"
    assert yaml.safe_load(text)["name"] == name


@pytest.mark.parametrize("name", NAMES)
def test_template_dry_runs_or_names_what_cannot_run_yet(name: str, workspace: Path) -> None:
    result = invoke("pipeline", "run", str(template(name)), "--dry-run")
    if result.exit_code == 2:  # a valid definition using features this version refuses to run
        assert "cannot run yet, this version does not support:" in result.output, result.output
    else:
        assert result.exit_code == 0, result.output
        assert "dry run" in result.output
    assert not (workspace / "orchestrate.db").exists()


def test_ci_dry_run_shows_every_stage(workspace: Path) -> None:
    result = invoke("pipeline", "run", str(template("ci")), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "critical path: setup → lint → test → build" in result.output


def test_templates_using_agents_say_which_agents_to_define() -> None:
    for name in NAMES:
        text = template(name).read_text(encoding="utf-8")
        header = text.split("\nname:", 1)[0]
        for stage in yaml.safe_load(text)["stages"]:
            if "agent" in stage:
                assert re.search(rf"#\s+{re.escape(stage['agent'])}:\s+\{{command:", header), (
                    f"{name}: the header shows no orchestrate.yaml entry for agent {stage['agent']!r}"
                )


def run_ci(workspace: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    """`orchestrate pipeline run templates/ci.yaml` in its own process, in a workspace of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATE_")}
    argv = [sys.executable, "-m", "orchestrate", "--workspace", str(workspace)]
    argv += ["pipeline", "run", str(template("ci")), "--plain", "--var", f"python={sys.executable}"]
    for pair in variables:
        argv += ["--var", pair]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=100, check=False)


def explain(done: subprocess.CompletedProcess[str], workspace: Path) -> str:
    """What the run printed, and the log of every stage: what an assertion message needs."""
    logs = sorted(workspace.glob("logs/*/*.log"))
    return "\n".join([done.stdout, done.stderr, *(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)])


def succeeded(output: str, stage: str) -> bool:
    return re.search(rf"^\S+ {re.escape(stage)} succeeded in ", output, re.MULTILINE) is not None


@pytest.mark.slow
def test_ci_runs_green_on_this_repository(workspace: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    done = run_ci(workspace, f"src={REPO}", f"dist={dist}")
    assert done.returncode == 0, explain(done, workspace)
    for stage in ("setup", "lint", "test", "build"):
        assert succeeded(done.stdout, stage), done.stdout
    assert re.search(r"^\S+ run \S+ succeeded in ", done.stdout, re.MULTILINE), done.stdout
    [artifact] = dist.glob("orchestrate-*.tar.gz")
    assert artifact.stat().st_size > 0


def sample_project(root: Path, *, lint_error: bool = False) -> Path:
    """A tiny Python project outside any git repository: ci packs it with tar."""
    (root / "sample").mkdir(parents=True)
    (root / "sample" / "__init__.py").write_text(
        ("import os\n\n" if lint_error else "") + "def double(x: int) -> int:\n    return 2 * x\n"
    )
    (root / "tests").mkdir()
    (root / "tests" / "test_sample.py").write_text(
        "from sample import double\n\n\ndef test_double() -> None:\n    assert double(2) == 4\n"
    )
    return root


def sample_vars(project: Path) -> list[str]:
    return [f"src={project}", "test_paths=tests", "test_marks=", "sources=sample", "project=sample"]


@pytest.mark.slow
def test_ci_adapts_to_another_project(workspace: Path, tmp_path: Path) -> None:
    project = sample_project(tmp_path / "project")
    done = run_ci(workspace, *sample_vars(project))
    assert done.returncode == 0, explain(done, workspace)
    assert all(succeeded(done.stdout, s) for s in ("lint", "test", "build")), done.stdout
    [artifact] = (project / "dist").glob("sample-*.tar.gz")
    assert artifact.stat().st_size > 0


@pytest.mark.slow
def test_ci_stops_at_a_lint_error(workspace: Path, tmp_path: Path) -> None:
    project = sample_project(tmp_path / "project", lint_error=True)
    done = run_ci(workspace, *sample_vars(project))
    assert done.returncode == 1, explain(done, workspace)
    assert re.search(r"^\S+ lint failed in ", done.stdout, re.MULTILINE), done.stdout
    assert "test started" not in done.stdout and not (project / "dist").exists()
