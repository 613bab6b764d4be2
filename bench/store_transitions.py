"""Milliseconds per recorded transition (one run_events row + current-state update).

    .venv/bin/python bench/store_transitions.py [TRANSITIONS]

Each StageStarted / StageFinished is one BEGIN IMMEDIATE ... COMMIT on a WAL file
with synchronous=NORMAL, as the engine records them. Prints; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrate.domain.events import RunEvent, StageFinished, StageStarted
from orchestrate.domain.status import StageStatus
from orchestrate.store import open_store

STAGES = 100


def main(transitions: int = 10_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "orchestrate.db")
        version = store.register_version("bench", "d" * 64, "pipelines.d/bench.yaml", "name: bench\n", "{}")
        names = [f"stage-{i}" for i in range(STAGES)]
        store.create_run("01benchrun000000", "bench", version, "d" * 64, {}, names, time.time())
        writer = store.writer("01benchrun000000")

        # Built up front so the timing covers recording only, not event construction.
        events: list[RunEvent] = []
        attempt: dict[str, int] = {}
        for i in range(transitions // 2):
            name = names[i % STAGES]
            attempt[name] = attempt.get(name, 0) + 1
            at = time.time()
            events.append(StageStarted("01benchrun000000", name, attempt[name], at, f"logs/{name}.log"))
            events.append(
                StageFinished("01benchrun000000", name, attempt[name], at, StageStatus.SUCCEEDED, exit_code=0)
            )

        start = time.perf_counter()
        for event in events:
            writer.emit(event)
        elapsed = time.perf_counter() - start
        store.close()
    print(
        f"{len(events)} transitions in {elapsed:.3f} s: {elapsed / len(events) * 1000:.4f} ms per transition"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
