"""``concurrency: {limit, on_conflict}`` when a run starts (issue 11): queue, cancel-older, skip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows
from tests.worker.helpers import wait_for

HOLD = """
name: hold
concurrency: {limit: 1, on_conflict: MODE}
stages:
  - {name: a, run: "sleep 20"}
"""


@pytest.fixture
def holding(pipeline_file, workspace: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start a detached run that holds the pipeline's one slot; cancelled at the end."""
    started: list[str] = []

    def start(mode: str) -> str:
        pipeline_file("hold", HOLD.replace("MODE", mode))
        result = invoke("pipeline", "run", "hold", "--detach")
        assert result.exit_code == 0, result.output
        started.append(result.output.splitlines()[0])
        return started[-1]

    yield start
    for run_id in started:
        invoke("pipeline", "cancel", run_id)


def status(workspace: Path, run_id: str) -> tuple[str, str | None]:
    return rows(workspace / "orchestrate.db", "SELECT status, reason FROM runs WHERE id = ?", run_id)[0]


def test_queue_makes_a_second_run_wait(holding, workspace: Path) -> None:
    first = holding("queue")
    result = invoke("pipeline", "run", "hold", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.splitlines()[-1])
    assert data["status"] == "queued"
    assert f"concurrency limit 1 of hold reached (active: {first})" in data["message"]
    assert status(workspace, data["id"])[0] == "queued"
    # A third run queues behind it, even if a slot were free: first in, first out.
    third = invoke("pipeline", "run", "hold", "--json")
    assert json.loads(third.output.splitlines()[-1])["status"] == "queued"
    # A queued run is cancelled at once: no process to wait for.
    cancelled = invoke("pipeline", "cancel", data["id"])
    assert cancelled.exit_code in (0, 1), cancelled.output
    state, reason = status(workspace, data["id"])
    assert state == "cancelled" and reason is not None and reason.endswith("while queued")


def test_skip_records_the_run_as_skipped_and_exits_1(holding, workspace: Path) -> None:
    first = holding("skip")
    result = invoke("pipeline", "run", "hold")
    assert result.exit_code == 1
    run_id = result.output.splitlines()[0]
    assert f"run {run_id} skipped: concurrency limit 1 of hold reached (active: {first})" in result.output
    state, reason = status(workspace, run_id)
    assert state == "cancelled" and reason.startswith("skipped: concurrency limit 1")
    assert status(workspace, first)[0] in ("pending", "running")


def test_cancel_older_stops_the_active_run(holding, pipeline_file, workspace: Path) -> None:
    first = holding("cancel-older")
    wait_for(lambda: status(workspace, first)[0] == "running", what="the first run to start")
    pipeline_file("hold", HOLD.replace("MODE", "cancel-older").replace("sleep 20", "true"))
    result = invoke("pipeline", "run", "hold", "--plain")
    assert result.exit_code == 0, result.output
    assert f"cancelling older run {first} (concurrency: cancel-older)" in result.output
    wait_for(lambda: status(workspace, first)[0] == "cancelled", what="the older run to stop")
    assert "concurrency: cancel-older" in (status(workspace, first)[1] or "")


def test_an_empty_concurrency_mapping_is_a_limit_of_one() -> None:
    from orchestrate.services.concurrency import Policy

    assert Policy.of({}) == Policy(1, "queue")
    assert Policy.of({"on_conflict": "skip"}) == Policy(1, "skip")
    assert Policy.of(None) is None


def test_queue_with_detach_is_a_usage_error_and_stores_nothing(pipeline_file, workspace: Path) -> None:
    pipeline_file("q", "name: q\nstages:\n  - {name: a, run: 'true'}\n")
    result = invoke("pipeline", "run", "q", "--queue", "--detach")
    assert result.exit_code == 2
    assert "--queue and --detach" in result.output and "Traceback" not in result.output
    db = workspace / "orchestrate.db"
    assert not db.exists() or rows(db, "SELECT COUNT(*) FROM runs") == [(0,)]
