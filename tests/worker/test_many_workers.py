"""Several ``orchestrate worker`` processes on one PostgreSQL store (issue 13, acceptance 3).

Three workers, each playing a host of its own (``ORCHESTRATE_HOSTNAME``), share a queue
of 200 runs. One is killed with everything it started, as a host dies; its runs are found
by their missing heartbeat and resumed by the other two. Every run ends once, none is
lost, and no stage runs twice but those the crash interrupted.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from orchestrate.domain.ids import new_run_id
from orchestrate.services import concurrency
from orchestrate.store import Store, open_store
from tests.worker.helpers import WorkerProcess, orchestrate, wait_for

pytestmark = pytest.mark.slow

RUNS = 200
DEAD_AFTER = 8.0  # seconds without a heartbeat before another host's worker takes a run over


def pipeline(executions: Path) -> str:
    # Each stage appends "RUN STAGE" as it starts (O_APPEND: whole lines from any process),
    # so a stage that ran twice shows twice.
    return f"""
name: short
stages:
  - name: a
    run: echo "$ORCHESTRATE_RUN_ID a" >> {executions}; sleep 0.2
  - name: b
    depends_on: [a]
    run: echo "$ORCHESTRATE_RUN_ID b" >> {executions}; sleep 0.4
"""


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    s = open_store(postgres_url)
    yield s
    s.close()


def queue_runs(workspace: Path, store: Store, url: str, n: int) -> list[str]:
    """The first run queued as a user does (`pipeline run --queue`), the rest like it, in this process."""
    first = orchestrate(workspace, "pipeline", "run", "short", "--queue", ORCHESTRATE_DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    state = store.run_state(first.stdout.strip())
    version = store.version(state.pipeline, state.version)
    assert version is not None
    ids = [state.run_id]
    for i in range(n - 1):
        run_id = new_run_id()
        store.create_run(
            run_id,
            state.pipeline,
            state.version,
            version.digest,
            {},
            list(state.stages),
            state.created_at + 0.001 * (i + 1),
            trigger="manual",
        )
        concurrency.queue(store, run_id)  # what `pipeline run --queue` does after creating the run
        ids.append(run_id)
    return ids


def rows(store: Store, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """A query of the test's own on the store's PostgreSQL connection (psycopg placeholders)."""
    pg: Any = store._db  # type: ignore[attr-defined]
    with pg.read() as conn:
        return [tuple(r) for r in conn.raw.execute(statement, params).fetchall()]


def kill_host(worker: WorkerProcess) -> list[int]:
    """SIGKILL the worker and every process under it (its runs, their stages), frozen first."""
    root = psutil.Process(worker.proc.pid)
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        try:
            p.send_signal(signal.SIGSTOP)  # nobody writes, reaps or spawns while the rest die
        except psutil.NoSuchProcess:
            pass
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    worker.proc.wait(10)
    return [p.pid for p in procs]


@pytest.mark.timeout(480)  # about 1.5 minutes on 2 busy cores; the suite's 120 s default is too short
def test_three_workers_share_200_runs_and_resume_a_killed_hosts_runs(
    workspace: Path, postgres_url: str, store: Store, workers: list[WorkerProcess]
) -> None:
    executions = workspace / "executions.txt"
    (workspace / "pipelines.d" / "short.yaml").write_text(pipeline(executions))
    (workspace / "orchestrate.yaml").write_text(
        "defaults: {max_parallel: 4}\nworker: {active_poll: 200ms, idle_poll: 1s}\n"
    )
    run_ids = queue_runs(workspace, store, postgres_url, RUNS)
    assert rows(store, "SELECT COUNT(*) FROM runs WHERE status = 'queued'") == [(RUNS,)]

    env: dict[str, Any] = {
        "ORCHESTRATE_DATABASE_URL": postgres_url,
        "ORCHESTRATE_HEARTBEAT_EVERY": "0.5",
        "ORCHESTRATE_DEAD_AFTER": str(DEAD_AFTER),
    }
    for host in ("host-a", "host-b", "host-c"):
        workers.append(
            WorkerProcess(workspace, "--max-runs", "4", "--grace", "1", ORCHESTRATE_HOSTNAME=host, **env)
        )
    victim = workers[0]
    victim_id = f"{victim.proc.pid}@host-a"

    def victim_mid_run() -> list[tuple[Any, ...]]:
        """The victim's runs with stage a done and stage b running, once enough runs are done."""
        done = rows(store, "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")[0][0]
        if done < RUNS // 4:
            return []
        return rows(
            store,
            "SELECT r.id FROM runs r JOIN stages a ON a.run_id = r.id AND a.name = 'a' "
            "JOIN stages b ON b.run_id = r.id AND b.name = 'b' "
            "WHERE r.status = 'running' AND r.host = 'host-a' AND a.status = 'succeeded' AND b.status = 'running'",
        )

    wait_for(victim_mid_run, 120.0, "a quarter of the runs done and one of host-a's runs at stage b")
    kill_host(victim)
    killed_at = time.time()
    # When each unfinished run last showed a sign of life (a heartbeat, or leaving the queue).
    beats = dict(rows(store, "SELECT id, heartbeat_at FROM runs WHERE status IN ('pending', 'running')"))

    # What the crash left: host-a's unfinished runs and their stages, as the store has them now.
    left = rows(
        store,
        "SELECT s.run_id, s.name, s.status FROM stages s JOIN runs r ON r.id = s.run_id "
        "WHERE r.host = 'host-a' AND r.status IN ('pending', 'running')",
    )
    orphans = {run for run, _, _ in left}
    assert orphans, "host-a had runs in progress when it died"
    settled = {(run, stage) for run, stage, status in left if status == "succeeded"}
    assert settled  # (the run chosen mid-stage may just have finished b: its stage is settled)
    # What may run again: the orphans' unsettled stages. Not only those recorded as running:
    # a stage whose process had started (and logged its start) when the host died, but whose
    # start was not committed yet, is pending in the store and is run again too.
    interrupted = {(run, stage) for run, stage, status in left if status != "succeeded"}

    def all_finished() -> bool:
        open_runs = rows(
            store, "SELECT COUNT(*) FROM runs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"
        )
        return open_runs[0][0] == 0

    wait_for(all_finished, 240.0, "every run to finish")

    # None lost, every one succeeded and ended once.
    statuses = Counter(s for (s,) in rows(store, "SELECT status FROM runs"))
    assert statuses == {"succeeded": RUNS}, statuses
    finished = Counter(r for (r,) in rows(store, "SELECT run_id FROM run_events WHERE kind = 'run_finished'"))
    assert set(finished) == set(run_ids) and set(finished.values()) == {1}

    # No stage started twice, but those the crash interrupted; the settled ones were kept.
    started = Counter(tuple(line.split()) for line in executions.read_text().splitlines())
    assert set(started) == {(r, s) for r in run_ids for s in ("a", "b")}
    twice = {key for key, n in started.items() if n > 1}
    assert twice <= interrupted, twice - interrupted
    assert max(started.values()) <= 2
    assert all(started[key] == 1 for key in settled)
    attempts = Counter(
        (r, s) for r, s in rows(store, "SELECT run_id, stage FROM stage_attempts WHERE status = 'succeeded'")
    )
    assert set(attempts.values()) == {1} and len(attempts) == 2 * RUNS

    # The orphans were resumed by the two other hosts' workers once their heartbeats had
    # stopped for DEAD_AFTER, each by one process. (A launch whose process is slow to claim the
    # run may be repeated after DEAD_AFTER: the run's claim lets one process through.)
    launches = rows(store, "SELECT run_id, reason, worker, launched_at FROM worker_launches")
    takeovers = [(r, w, at) for r, reason, w, at in launches if reason == "orphaned"]
    assert orphans <= {r for r, _, _ in takeovers}
    assert all(w.endswith(("@host-b", "@host-c")) for _, w, _ in takeovers)
    early = [
        (r, at - beats[r] if r in beats else None)
        for r, _, at in takeovers
        if at - beats.get(r, at) < DEAD_AFTER
    ]
    assert not early, early
    restarts = rows(
        store, "SELECT run_id, payload FROM run_events WHERE kind = 'run_started' AND at > %s", killed_at
    )
    again = Counter(r for r, _ in restarts if r in orphans)
    assert set(again) == orphans and set(again.values()) == {1}
    assert all('"host-a"' not in payload for r, payload in restarts if r in orphans)
    # Each run was taken off the queue and started by one worker once: only the victim may
    # have died between taking a run and recording its launch, and then the run is an orphan.
    queued = Counter(r for r, reason, _, _ in launches if reason == "queued")
    assert set(queued.values()) == {1}
    victims = {r for r, _, w, _ in launches if w == victim_id}
    for r in set(run_ids) - set(queued):
        assert r in {t for t, _, _ in takeovers}, r
    assert {r for r, _, _ in takeovers} <= victims | (set(run_ids) - set(queued))
    log = "".join(w.output() for w in workers[1:])
    for run in orphans:
        assert f"started run {run} (orphaned" in log
