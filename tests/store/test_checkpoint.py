"""checkpoints/<run>/: snapshot + journal, atomic, linear in bytes, readable back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from orchestrate.domain.events import RunFinished, RunStarted, StageFinished, StageStarted
from orchestrate.domain.state import RunState, fold
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store.checkpoint import (
    JOURNAL,
    SCHEMA_PATH,
    SNAPSHOT,
    CheckpointError,
    CheckpointWriter,
    Definition,
    read_checkpoint,
)

DEFINITION = Definition("p", 1, "a" * 64, "pipelines.d/p.yaml", "name: p\n")


def events_for(names: list[str]) -> list[object]:
    out: list[object] = [RunStarted("r", 1.0, 42, "host")]
    for i, name in enumerate(names):
        out.append(StageStarted("r", name, 1, 2.0 + i, f"logs/r/{name}.log", "true", 100 + i))
        out.append(StageFinished("r", name, 1, 2.5 + i, StageStatus.SUCCEEDED, 0, outputs={"n": str(i)}))
    out.append(RunFinished("r", 9.0, RunStatus.SUCCEEDED))
    return out


def test_after_every_transition_the_checkpoint_reads_back_the_same_state(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    initial = RunState.new("r", "p", names, 0.5, {"x": "1"})
    writer = CheckpointWriter(tmp_path, initial, DEFINITION)
    state = initial
    for event in events_for(names):
        writer.emit(event)  # type: ignore[arg-type]
        state = fold(state, [event])  # type: ignore[list-item]
        read, definition = read_checkpoint(tmp_path / SNAPSHOT)
        assert read.status == state.status and read.stages == state.stages
        assert definition == DEFINITION
    assert (tmp_path / JOURNAL).read_bytes() == b""  # the run ended: the snapshot holds everything
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(json.loads((tmp_path / SNAPSHOT).read_text()), schema)


def test_a_thousand_stage_run_writes_well_under_5_mb(tmp_path: Path) -> None:
    names = [f"stage-{i:04d}" for i in range(1000)]
    writer = CheckpointWriter(tmp_path, RunState.new("r", "p", names, 0.5), DEFINITION)
    for event in events_for(names):
        writer.emit(event)  # type: ignore[arg-type]
    assert writer.bytes_written < 5_000_000, writer.bytes_written
    state, _ = read_checkpoint(tmp_path / SNAPSHOT)
    assert all(s.status is StageStatus.SUCCEEDED for s in state.stages.values())


def test_a_torn_last_journal_line_is_ignored_and_a_corrupt_one_is_reported(tmp_path: Path) -> None:
    names = ["a", "b"]
    writer = CheckpointWriter(tmp_path, RunState.new("r", "p", names, 0.5), DEFINITION)
    for event in events_for(names)[:3]:
        writer.emit(event)  # type: ignore[arg-type]
    journal = tmp_path / JOURNAL
    good = journal.read_bytes()
    journal.write_bytes(good + b'{"seq": 4, "kind": "stage_sta')  # a crash mid-write
    state, _ = read_checkpoint(tmp_path / SNAPSHOT)
    assert (
        state.stages["a"].status is StageStatus.SUCCEEDED and state.stages["b"].status is StageStatus.PENDING
    )
    journal.write_bytes(b"garbage\n" + good)
    with pytest.raises(CheckpointError, match=r"journal.jsonl:1: not a valid journal line"):
        read_checkpoint(tmp_path / SNAPSHOT)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (
            lambda text: text[: len(text) // 2],
            r"checkpoint.json: not a valid checkpoint: .* at line \d+ column \d+",
        ),
        (lambda text: text.replace('"format": 1', '"format": 7'), r"format: 1 was expected"),
        (lambda text: "", r"Expecting value at line 1 column 1 \(of 0 bytes\)"),
    ],
)
def test_a_corrupt_snapshot_names_the_file_and_position(tmp_path: Path, mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    writer = CheckpointWriter(tmp_path, RunState.new("r", "p", ["a"], 0.5), DEFINITION)
    writer.close()
    path = tmp_path / SNAPSHOT
    path.write_text(mangle(path.read_text()))
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)
