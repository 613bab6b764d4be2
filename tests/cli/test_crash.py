"""Crash test (issue 4): SIGKILL the run process at random moments, resume, and lose nothing."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import rows


def thirty_stages(markers: Path) -> str:
    rng = random.Random(7)
    lines = ["name: crashy", "stages:"]
    for i in range(30):
        needs = sorted(rng.sample(range(i), k=min(i, rng.choice([0, 1, 1, 2])))) if i else []
        # ≈7 s of work, one stage at a time: more than 20 short lives of the run process can finish
        pause = rng.choice(["0.1", "0.2", "0.4"])
        lines.append(f"  - name: s{i:02d}")
        lines.append(f"    depends_on: [{', '.join(f's{n:02d}' for n in needs)}]")
        lines.append(
            f'    run: echo "$ORCHESTRATE_STAGE start"; sleep {pause}; '
            f'echo "$ORCHESTRATE_STAGE $ORCHESTRATE_ATTEMPT" >> {markers}; echo "$ORCHESTRATE_STAGE end"'
        )
    return "\n".join(lines) + "\n"


def _stored(db: Path) -> bool:
    try:
        return bool(rows(db, "select id from runs"))
    except Exception as e:  # no schema yet (sqlite3.OperationalError, psycopg's UndefinedTable)
        if "no such table" in str(e) or "does not exist" in str(e):
            return False
        raise


def marker_counts(markers: Path) -> collections.Counter[str]:
    if not markers.exists():
        return collections.Counter()
    return collections.Counter(line.split()[0] for line in markers.read_text().splitlines() if line.strip())


@pytest.mark.slow
def test_twenty_random_sigkills_lose_nothing_and_rerun_nothing_that_succeeded(workspace: Path) -> None:
    markers = workspace / "markers"
    (workspace / "pipelines.d" / "crashy.yaml").write_text(thirty_stages(markers))
    db = workspace / "orchestrate.db"
    rng = random.Random(2026)
    frozen: dict[str, int] = {}  # stage → marker count when the store first said it succeeded
    run_id: str | None = None
    kills = 0
    while kills < 20:
        args = ["pipeline", "resume", run_id] if run_id else ["pipeline", "run", "crashy"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrate", *args, "--plain", "--max-parallel", "1"],
            cwd=workspace,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        if run_id is None:  # the first start creates the schema: let it store the run first
            deadline = time.monotonic() + 30
            while not _stored(db):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
        else:  # let this process get going (its start-up takes longer on a loaded machine)
            seen = rows(db, "select count(*) from run_events")[0][0]
            deadline = time.monotonic() + 30
            while rows(db, "select count(*) from run_events")[0][0] == seen:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.7))  # commits, checkpoint writes, stage waits alike
        assert proc.poll() is None, "the run ended before its 20th crash: make the pipeline longer"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        run_id = rows(db, "select id from runs")[0][0]
        counts = marker_counts(markers)
        for (name,) in rows(db, "select name from stages where run_id = ? and status = 'succeeded'", run_id):
            frozen.setdefault(name, counts[name])
    assert run_id is not None
    final = subprocess.run(
        [sys.executable, "-m", "orchestrate", "pipeline", "resume", run_id, "--plain"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert final.returncode == 0, final.stdout + final.stderr
    assert rows(db, "select status from runs") == [("succeeded",)]
    statuses = dict(rows(db, "select name, status from stages"))
    assert set(statuses.values()) == {"succeeded"} and len(statuses) == 30
    counts = marker_counts(markers)
    assert len(frozen) >= 5  # stages did succeed between crashes
    for name, seen in frozen.items():
        assert counts[name] == seen, f"{name} ran again after it had succeeded"
    for name, attempts, log_path in rows(
        db,
        "select s.name, s.attempts, a.log_path from stages s join stage_attempts a "
        "on a.run_id = s.run_id and a.stage = s.name and a.attempt = s.attempts",
    ):
        text = Path(log_path).read_text()
        last = text.rsplit(f"--- orchestrate: attempt {attempts} ---\n", 1)[-1]
        assert last == f"{name} start\n{name} end\n", (name, attempts, text)
    from orchestrate.store.checkpoint import read_checkpoint

    state, _ = read_checkpoint(workspace / "checkpoints" / run_id / "checkpoint.json")
    assert state.status.value == "succeeded" and len(state.stages) == 30
