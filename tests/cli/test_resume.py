"""Resume, checkpoints, fork, diff and --force, as a user drives them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows

FLAKY = """
name: flaky
variables: {{model: small}}
stages:
  - name: fetch
    run: echo "data=42" >> "$ORCHESTRATE_OUTPUT"
  - name: train
    run: '[ -e {ok} ] && echo "score=${{model}}" >> "$ORCHESTRATE_OUTPUT"'
  - name: report
    run: echo "report ${{stages.train.outputs.score}}"
"""


@pytest.fixture
def flaky(pipeline_file, workspace: Path) -> Path:
    ok = workspace / "ok"
    pipeline_file("flaky", FLAKY.format(ok=ok))
    return ok


def run_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = invoke(*args, "--json")
    return json.loads(result.output)


def attempts(record: dict) -> dict[str, list[int]]:  # type: ignore[type-arg]
    return {s["name"]: [a["attempt"] for a in s["attempts"]] for s in record["stages"]}


def test_resume_a_failed_run_reruns_failed_stages_and_what_follows(flaky: Path, workspace: Path) -> None:
    failed = run_json("pipeline", "run", "flaky")
    assert failed["status"] == "failed" and attempts(failed) == {"fetch": [1], "train": [1], "report": []}
    flaky.touch()
    resumed = run_json("pipeline", "resume", failed["id"][:9])
    assert resumed["id"] == failed["id"] and resumed["status"] == "succeeded"
    assert attempts(resumed) == {"fetch": [1], "train": [1, 2], "report": [1]}
    done = invoke("pipeline", "resume", failed["id"])
    assert done.exit_code == 0 and "already succeeded; nothing to resume" in done.output
    from_ = invoke("pipeline", "resume", failed["id"], "--from", "fetch")
    assert from_.exit_code == 2 and "pipeline fork" in from_.output


def test_run_dash_dash_resume_is_resume_and_checks_the_pipeline(
    flaky: Path, workspace: Path, pipeline_file
) -> None:
    failed = run_json("pipeline", "run", "flaky")
    pipeline_file("other", "name: other\nstages:\n  - {name: a, run: 'true'}\n")
    wrong = invoke("pipeline", "run", "other", "--resume", failed["id"])
    assert wrong.exit_code == 2 and "is a run of flaky, not other" in wrong.output
    flaky.touch()
    assert run_json("pipeline", "run", "flaky", "--resume", failed["id"])["status"] == "succeeded"


def test_force_starts_over_as_a_new_linked_run(flaky: Path, workspace: Path) -> None:
    flaky.touch()
    first = run_json("pipeline", "run", "flaky")
    second = run_json("pipeline", "resume", first["id"], "--force")
    assert second["id"] != first["id"] and second["status"] == "succeeded"
    assert second["parent_run_id"] == first["id"] and second["triggered_by"] == f"re-run of {first['id']}"
    assert attempts(second) == {"fetch": [1], "train": [1], "report": [1]}


def test_use_current_definition_is_opt_in_and_refused_when_stages_vanish(
    flaky: Path, workspace: Path, pipeline_file
) -> None:
    failed = run_json("pipeline", "run", "flaky")
    # the fix is in the file now; the run's snapshot still has the failing stage
    pipeline_file("flaky", FLAKY.format(ok=flaky).replace(f"[ -e {flaky} ] && ", ""))
    snapshot = run_json("pipeline", "resume", failed["id"])
    assert snapshot["status"] == "failed" and snapshot["version"] == 1
    current = run_json("pipeline", "resume", failed["id"], "--use-current-definition")
    assert current["status"] == "succeeded" and current["version"] == 2
    other = run_json("pipeline", "run", "flaky", "--var", "model=x")
    assert other["status"] == "succeeded"
    pipeline_file(
        "flaky", "name: flaky\nvariables: {model: small}\nstages:\n  - {name: fetch, run: 'exit 1'}\n"
    )
    broken = run_json("pipeline", "run", "flaky")
    pipeline_file("flaky", "name: flaky\nvariables: {model: small}\nstages:\n  - {name: only, run: 'true'}\n")
    refused = invoke("pipeline", "resume", broken["id"], "--use-current-definition")
    assert refused.exit_code == 2 and "no longer has stage(s) fetch" in refused.output


def test_fork_reuses_upstream_outputs_and_diff_shows_what_changed(flaky: Path, workspace: Path) -> None:
    flaky.touch()
    first = run_json("pipeline", "run", "flaky")
    forked = run_json("pipeline", "fork", first["id"], "--from", "train", "--var", "model=large")
    assert forked["status"] == "succeeded" and forked["parent_run_id"] == first["id"]
    stages = {s["name"]: s for s in forked["stages"]}
    assert stages["fetch"]["outputs"] == {"data": "42"}  # reused, not re-run
    assert stages["fetch"]["reason"] == f"reused from run {first['id']}"
    assert stages["fetch"]["attempts"][0]["log_path"] == first["stages"][0]["attempts"][0]["log_path"]
    assert stages["train"]["outputs"] == {"score": "large"}
    log = Path(stages["report"]["attempts"][0]["log_path"]).read_text()
    assert log == "report large\n"
    diff = json.loads(invoke("pipeline", "diff", first["id"], forked["id"], "--json").output)
    changed = {s["name"]: s["changed"] for s in diff["stages"]}
    assert changed == {"train": ["outputs"]}
    assert diff["a"]["variables"] == {"model": "small"} and diff["b"]["variables"] == {"model": "large"}
    table = invoke("pipeline", "diff", first["id"], forked["id"])
    assert "score=small" in table.output and "score=large" in table.output
    bad = invoke("pipeline", "fork", first["id"], "--from", "trian")
    assert bad.exit_code == 2 and 'did you mean "train"?' in bad.output


def test_fork_refuses_when_upstream_did_not_succeed(flaky: Path, workspace: Path) -> None:
    failed = run_json("pipeline", "run", "flaky")
    refused = invoke("pipeline", "fork", failed["id"], "--from", "report")
    assert refused.exit_code == 2 and "stage(s) train upstream of it did not succeed" in refused.output


@pytest.mark.sqlite_only
def test_resume_from_a_checkpoint_in_an_empty_store(flaky: Path, workspace: Path, tmp_path: Path) -> None:
    failed = run_json("pipeline", "run", "flaky")
    # another machine: a fresh workspace with nothing but the checkpoint folder copied over
    other = tmp_path / "elsewhere"
    (other / "pipelines.d").mkdir(parents=True)
    (other / "orchestrate.yaml").write_text("{}\n")
    moved = other / "moved" / failed["id"]
    shutil.copytree(workspace / "checkpoints" / failed["id"], moved)
    flaky.touch()
    result = invoke(
        "--workspace",
        str(other),
        "pipeline",
        "resume",
        "--checkpoint",
        str(moved / "checkpoint.json"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["id"] == failed["id"] and record["status"] == "succeeded"
    assert attempts(record) == {"fetch": [1], "train": [1, 2], "report": [1]}
    assert rows(other / "orchestrate.db", "select id, status from runs") == [(failed["id"], "succeeded")]
    twice = invoke(
        "--workspace", str(other), "pipeline", "resume", "--checkpoint", str(moved / "checkpoint.json")
    )
    assert twice.exit_code == 2 and "already in this store" in twice.output


def test_a_corrupt_checkpoint_is_refused_and_the_store_is_untouched(
    flaky: Path, workspace: Path, tmp_path: Path
) -> None:
    failed = run_json("pipeline", "run", "flaky")
    path = tmp_path / "checkpoint.json"
    text = (workspace / "checkpoints" / failed["id"] / "checkpoint.json").read_text()
    path.write_text(text[:300])
    other = tmp_path / "elsewhere"
    (other / "pipelines.d").mkdir(parents=True)
    (other / "orchestrate.yaml").write_text("{}\n")
    result = invoke("--workspace", str(other), "pipeline", "resume", "--checkpoint", str(path))
    assert result.exit_code == 2
    assert (
        f"{path}: not a valid checkpoint:" in result.output
        and "line" in result.output
        and "column" in result.output
    )
    assert not (other / "orchestrate.db").exists()
    neither = invoke("pipeline", "resume")
    assert neither.exit_code == 2 and "give a RUN id or --checkpoint FILE" in neither.output


def test_two_processes_resuming_the_same_run_the_second_refuses(pipeline_file, workspace: Path) -> None:
    marker = workspace / "go"
    pipeline_file(
        "hold",
        f"""
        name: hold
        stages:
          - name: wait
            run: '[ -e {marker} ] || exit 1; sleep 3'
        """,
    )
    failed = run_json("pipeline", "run", "hold")
    marker.touch()
    first = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "pipeline", "resume", failed["id"], "--plain"],
        cwd=workspace,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while rows(workspace / "orchestrate.db", "select status from runs")[0][0] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = invoke("pipeline", "resume", failed["id"])
    assert second.exit_code == 2 and "is locked by a live process" in second.output
    out, _ = first.communicate(timeout=30)
    assert first.returncode == 0, out
