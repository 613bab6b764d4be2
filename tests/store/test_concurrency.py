"""Readers in other processes never see "database is locked" while a run writes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

from orchestrate.domain.events import RunEvent, RunFinished, RunStarted, StageFinished, StageStarted
from orchestrate.domain.state import RunState, fold
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import Store
from tests.store.helpers import CREATED, ROOT, new_run

READER = """
import sys, time
from orchestrate.store import open_store

store = open_store(sys.argv[1])
print("ready", flush=True)
reads = 0
while True:
    state = store.run_state(sys.argv[2])
    reads += 1
    if reads % 10 == 0:
        store.heartbeat(sys.argv[2], time.time())  # a write from this process too
    if state.done:
        break
print(reads, flush=True)
"""


def test_a_reader_process_while_2000_events_are_written(store: Store, db_path: Path) -> None:
    stages = [f"s{i}" for i in range(20)]
    run_id = new_run(store, stages=stages)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db_path), run_id],
        env={"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        writer = store.writer(run_id)
        events: list[RunEvent] = [RunStarted(run_id, CREATED, pid=1)]
        for i in range(999):
            stage, attempt = stages[i % 20], i // 20 + 1
            events.append(StageStarted(run_id, stage, attempt, CREATED + i, f"{stage}.log"))
            retry = attempt < 50
            status = StageStatus.FAILED if retry else StageStatus.SUCCEEDED
            events.append(
                StageFinished(run_id, stage, attempt, CREATED + i + 0.5, status, int(retry), None, retry)
            )
        events.append(RunFinished(run_id, CREATED + 1000, RunStatus.SUCCEEDED))
        assert len(events) == 2000
        started = time.monotonic()
        for event in events:
            writer.emit(event)
        writing = time.monotonic() - started
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    assert "locked" not in err
    print(f"2000 events in {writing:.3f} s beside {out.strip()} reads")
    # The reader process wrote heartbeats meanwhile: a process fact, not an event.
    state = dataclasses.replace(store.run_state(run_id), heartbeat_at=CREATED)
    assert state == fold(RunState.new(run_id, "demo", stages, CREATED), events)
