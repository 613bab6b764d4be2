"""Building runs and event sequences for the store tests."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orchestrate
from orchestrate.domain.events import (
    RunEvent,
    RunFinished,
    RunStarted,
    StageFinished,
    StageLogLine,
    StageSkipped,
    StageStarted,
)
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import Store

ROOT = Path(orchestrate.__file__).resolve().parent.parent
DIGEST = "a" * 64
CREATED = 1_700_000_000.0
_ENDINGS = [StageStatus.SUCCEEDED, StageStatus.FAILED, StageStatus.CANCELLED]


def new_run(
    store: Store,
    run_id: str = "01run00000000000",
    stages: Sequence[str] = ("build", "test", "deploy"),
    pipeline: str = "demo",
    variables: dict[str, str] | None = None,
    created_at: float = CREATED,
) -> str:
    version = store.register_version(pipeline, DIGEST, f"pipelines.d/{pipeline}.yaml", "name: demo\n", "{}")
    store.create_run(run_id, pipeline, version, DIGEST, variables or {}, stages, created_at)
    return run_id


def full_run(run_id: str) -> list[RunEvent]:
    """build retries once then succeeds with outputs, test fails, deploy is skipped."""
    t = CREATED
    return [
        RunStarted(run_id, t + 1, pid=4242, host="builder"),
        StageStarted(run_id, "build", 1, t + 2, "logs/r/build.log", command="make"),
        StageLogLine(run_id, "build", "compiling"),
        StageFinished(
            run_id, "build", 1, t + 3, StageStatus.FAILED, exit_code=2, error="exit 2", will_retry=True
        ),
        StageStarted(run_id, "build", 2, t + 4, "logs/r/build.2.log", command="make"),
        StageFinished(
            run_id, "build", 2, t + 5, StageStatus.SUCCEEDED, exit_code=0, outputs={"artifact": "a.whl"}
        ),
        StageStarted(run_id, "test", 1, t + 6, "logs/r/test.log"),
        StageFinished(run_id, "test", 1, t + 7.5, StageStatus.FAILED, exit_code=1, error="2 tests failed"),
        StageSkipped(run_id, "deploy", t + 8, "a dependency failed: test"),
        RunFinished(run_id, t + 9, RunStatus.FAILED, reason='stage "test" failed'),
    ]


def random_run(rng: random.Random, run_id: str, names: Sequence[str]) -> list[RunEvent]:
    """A plausible random history: each stage's steps in order, stages interleaved at random."""
    times = iter(CREATED + i * 0.25 for i in range(1, 100_000))
    queues: list[tuple[str, list[tuple[str, int]]]] = []
    final: dict[str, int] = {}
    for name in names:
        if rng.random() < 0.2:
            queues.append((name, [("skip", 0)]))
            continue
        final[name] = rng.randint(1, 3)
        steps = [(step, a) for a in range(1, final[name] + 1) for step in ("start", "line", "finish")]
        if rng.random() < 0.15:
            steps.pop()  # the last attempt is still running
        queues.append((name, steps))
    events: list[RunEvent] = [RunStarted(run_id, next(times), pid=rng.randint(2, 99_999))]
    while queues:
        index = rng.randrange(len(queues))
        name, steps = queues[index]
        step, attempt = steps.pop(0)
        if not steps:
            queues.pop(index)
        at = next(times)
        if step == "skip":
            events.append(StageSkipped(run_id, name, at, f"when.branch: {rng.random():.3f}"))
        elif step == "start":
            events.append(
                StageStarted(run_id, name, attempt, at, f"logs/{name}.{attempt}.log", f"cmd {name}")
            )
        elif step == "line":
            events.append(StageLogLine(run_id, name, "output"))
        else:
            retry = attempt < final[name]
            status = StageStatus.FAILED if retry else rng.choice(_ENDINGS)
            ok = status is StageStatus.SUCCEEDED
            code = 0 if ok else rng.choice([None, 1, 137])
            error = None if ok else f"failed {rng.random():.3f}"
            outputs = {"k": str(rng.random())} if rng.random() < 0.5 else {}
            events.append(StageFinished(run_id, name, attempt, at, status, code, error, retry, outputs))
    if rng.random() < 0.8:
        outcome = rng.choice([RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED])
        events.append(
            RunFinished(run_id, next(times), outcome, None if outcome is RunStatus.SUCCEEDED else "why")
        )
    return events


def stored(events: Sequence[RunEvent]) -> list[RunEvent]:
    return [e for e in events if not isinstance(e, StageLogLine)]


def rows(db: Path, statement: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports orchestrate from this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
