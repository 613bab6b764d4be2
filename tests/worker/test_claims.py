"""The claims several workers share a store by (issue 13): the queue, and taking over a dead run.

Each test runs on SQLite and on PostgreSQL (where claims lock rows with FOR UPDATE SKIP
LOCKED instead of taking the global write lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrate.domain.ids import new_run_id
from orchestrate.domain.status import RunStatus
from orchestrate.store import Store, open_store, sql
from orchestrate.store.scheduling import Owner, Scheduling
from tests.cli.helpers import invoke

HOLD = 30.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = open_store(tmp_path / "orchestrate.db")
    else:
        s = open_store(request.getfixturevalue("postgres_url"))
    yield s
    s.close()


def queued_runs(store: Store, n: int) -> list[str]:
    version = store.register_version("p", "d1", "p.yaml", "name: p", "{}")
    ids = []
    for i in range(n):
        run_id = new_run_id()
        store.create_run(run_id, "p", version, "d1", {}, ["a"], 1000.0 + i, "manual")
        assert store.scheduling().set_status(run_id, RunStatus.QUEUED, RunStatus.PENDING)
        ids.append(run_id)
    return ids


def everything(_pipeline: str, _version: int) -> bool:
    return True


def test_claim_queued_takes_the_oldest_runs_once(store: Store) -> None:
    ids = queued_runs(store, 5)
    sched = store.scheduling()
    assert sched.claim_queued(2, 2000.0, everything, 2) == ids[:2]
    assert sched.claim_queued(10, 2001.0, lambda _p, _v: False, 10) == []  # none it may take
    assert sched.claim_queued(10, 2002.0, everything, 10) == ids[2:]
    assert sched.claim_queued(10, 2003.0, everything, 10) == []
    assert {store.run_state(r).status for r in ids} == {RunStatus.PENDING}
    assert store.run_state(ids[2]).heartbeat_at == 2002.0  # a detached process's time to claim starts


def test_workers_claiming_at_once_take_different_runs(store: Store, tmp_path: Path) -> None:
    ids = queued_runs(store, 60)
    location = store._db.path or store._db.url  # type: ignore[attr-defined]
    taken: list[list[str]] = []

    def worker() -> None:
        s = open_store(location)
        mine: list[str] = []
        try:
            while got := s.scheduling().claim_queued(3, time.time(), everything, 3):
                mine += got
        finally:
            s.close()
        taken.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [r for mine in taken for r in mine]
    assert sorted(claimed) == sorted(ids)  # every run once, by one worker
    assert len(taken) == 3


def test_on_postgresql_a_claim_skips_the_rows_another_is_claiming(postgres_url: str) -> None:
    first, second = open_store(postgres_url), open_store(postgres_url)
    try:
        ids = queued_runs(first, 4)
        got: list[str] = []
        with first._db.claim() as conn:  # type: ignore[attr-defined]
            # A worker in the middle of its claim holds the two oldest runs' rows.
            held = conn.execute(sql.CLAIM_QUEUED_RUNS + first._db.ROW_LOCK, ("queued", 2)).fetchall()  # type: ignore[attr-defined]
            assert [r[0] for r in held] == ids[:2]
            other = threading.Thread(
                target=lambda: got.extend(second.scheduling().claim_queued(2, 1.0, everything, 4))
            )
            other.start()
            other.join(30)  # SKIP LOCKED: it neither waits for those rows nor takes them
            assert not other.is_alive()
        assert got == ids[2:]
        assert first.scheduling().claim_queued(4, 2.0, everything, 4) == ids[:2]
    finally:
        first.close()
        second.close()


def owner_of(sched: Scheduling, store: Store, run_id: str) -> Owner:
    state = store.run_state(run_id)
    return Owner(state.pid, state.host, state.heartbeat_at, state.status.value)


def test_take_over_is_one_workers_until_the_hold_passes(store: Store) -> None:
    (run_id,) = queued_runs(store, 1)
    sched = store.scheduling()
    assert sched.claim_queued(1, 2000.0, everything, 1) == [run_id]
    assert store.claim(run_id, (None, None), 4242, "host-a")  # its process claims it, then dies
    seen = owner_of(sched, store, run_id)
    beat = seen.heartbeat_at
    assert beat is not None
    first = sched.take_over(run_id, seen, beat + 31, "1@host-b", "orphaned", HOLD)
    assert first is not None
    # Another worker, judging from the same view a moment later: taken already.
    assert sched.take_over(run_id, seen, beat + 32, "2@host-c", "orphaned", HOLD) is None
    # The launch's process never claimed the run: after the hold, it may be taken again.
    assert sched.take_over(run_id, seen, beat + 31 + HOLD, "2@host-c", "orphaned", HOLD) is not None
    sched.launch_started(first, 777)


def test_take_over_refuses_a_run_that_changed_since_it_was_judged(store: Store) -> None:
    (run_id,) = queued_runs(store, 1)
    sched = store.scheduling()
    sched.claim_queued(1, 2000.0, everything, 1)
    seen = owner_of(sched, store, run_id)
    assert store.claim(run_id, (None, None), 4242, "host-a")  # a process claimed it meanwhile
    assert sched.take_over(run_id, seen, time.time() + 100, "1@host-b", "orphaned", HOLD) is None
    now = owner_of(sched, store, run_id)
    assert sched.take_over(run_id, now, time.time() + 100, "1@host-b", "orphaned", HOLD) is not None


def test_an_interrupted_run_is_resumed_by_one_worker(store: Store) -> None:
    (run_id,) = queued_runs(store, 1)
    sched = store.scheduling()
    sched.launched(run_id, "queued", 1.0, "1@a", 99)
    sched.interrupted(run_id, "1@a", 2.0)
    assert sched.interrupted_runs() == [run_id]
    assert sched.resumed(run_id, 3.0) is True
    assert sched.resumed(run_id, 3.1) is False  # the second worker leaves it


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ORCHESTRATE_DEAD_AFTER": "soon"},
            "ORCHESTRATE_DEAD_AFTER: 'soon' is not a positive number of seconds",
        ),
        ({"ORCHESTRATE_HEARTBEAT_EVERY": "-1"}, "ORCHESTRATE_HEARTBEAT_EVERY: '-1' is not a positive number"),
        (
            {"ORCHESTRATE_HEARTBEAT_EVERY": "10", "ORCHESTRATE_DEAD_AFTER": "5"},
            "ORCHESTRATE_HEARTBEAT_EVERY (10s) must be shorter than ORCHESTRATE_DEAD_AFTER (5s)",
        ),
    ],
)
def test_the_worker_refuses_malformed_liveness_settings(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = invoke("worker", "--once", "--port", "0")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
