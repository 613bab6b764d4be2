"""RunWriter: one transaction per transition, and current state that matches the reducer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from orchestrate.domain.errors import NotFoundError
from orchestrate.domain.events import (
    EventSink,
    RunEvent,
    RunFinished,
    RunStarted,
    StageFinished,
    StageLogLine,
    StageSkipped,
    StageStarted,
    to_record,
)
from orchestrate.domain.state import RunState, fold
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import RunWriter, Store
from orchestrate.store.writer import payload
from tests.store.helpers import CREATED, full_run, new_run, random_run, rows, stored


def expected_state(
    run_id: str, stages: list[str], events: list[RunEvent], variables: dict[str, str] | None = None
) -> RunState:
    return fold(RunState.new(run_id, "demo", stages, CREATED, variables), stored(events))


def test_writer_is_an_event_sink(store: Store) -> None:
    sink: EventSink = store.writer(new_run(store))
    assert isinstance(sink, RunWriter)


def test_full_run_state_equals_the_fold_of_its_events(store: Store) -> None:
    run_id = new_run(store, variables={"env": "staging"})
    events = full_run(run_id)
    writer = store.writer(run_id)
    for event in events:
        writer.emit(event)

    state = store.run_state(run_id)
    assert state == expected_state(run_id, ["build", "test", "deploy"], events, {"env": "staging"})
    # and, spelled out, the fields the store keeps
    assert state.status is RunStatus.FAILED
    assert state.reason == 'stage "test" failed'
    assert state.pid == 4242
    build, test, deploy = state.stages.values()
    assert [a.status for a in build.attempts] == [StageStatus.FAILED, StageStatus.SUCCEEDED]
    assert [a.exit_code for a in build.attempts] == [2, 0]
    assert build.attempts[1].log_path == "logs/r/build.2.log"
    assert build.status is StageStatus.SUCCEEDED and build.outputs == {"artifact": "a.whl"}
    assert build.reason is None
    assert (test.status, test.reason, test.attempts[0].exit_code) == (StageStatus.FAILED, "2 tests failed", 1)
    assert (deploy.status, deploy.reason, deploy.attempts) == (
        StageStatus.SKIPPED,
        "a dependency failed: test",
        (),
    )


@pytest.mark.parametrize("seed", range(25))
def test_random_histories_match_the_reducer(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    names = [f"s{i}" for i in range(rng.randint(1, 8))]
    run_id = new_run(store, stages=names)
    events = random_run(rng, run_id, names)
    writer = store.writer(run_id)
    for event in events:
        writer.emit(event)
    state = store.run_state(run_id)
    expected = expected_state(run_id, names, events)
    assert state == expected
    assert list(state.stages) == list(expected.stages)


def test_each_transition_appends_exactly_one_event_row(store: Store, db_path: Path) -> None:
    run_id = new_run(store)
    writer = store.writer(run_id)
    count = 0
    for event in full_run(run_id):
        writer.emit(event)
        if not isinstance(event, StageLogLine):
            count += 1
        assert rows(db_path, "select count(*) from run_events where run_id = ?", run_id) == [(count,)]
    seqs = [s for (s,) in rows(db_path, "select seq from run_events where run_id = ? order by id", run_id)]
    assert seqs == list(range(1, count + 1))


def test_run_events_round_trip(store: Store) -> None:
    run_id = new_run(store)
    events = full_run(run_id)
    writer = store.writer(run_id)
    for event in events:
        writer.emit(event)
    assert store.run_events(run_id) == stored(events)


def test_seq_is_per_run(store: Store) -> None:
    first, second = new_run(store, "01aaaaaaaaaaaaaa"), new_run(store, "01bbbbbbbbbbbbbb")
    for run_id in (first, second, first):
        store.writer(run_id).emit(RunStarted(run_id, CREATED + 1, pid=1))
    assert len(store.run_events(first)) == 2
    assert len(store.run_events(second)) == 1


def test_payload_is_what_to_record_stores() -> None:
    rng = random.Random(7)
    events = full_run("01run00000000000") + random_run(rng, "01run00000000000", ["a", "b", "c", "d"])
    assert {type(e) for e in stored(events)} == {
        RunStarted,
        StageStarted,
        StageFinished,
        StageSkipped,
        RunFinished,
    }
    for event in stored(events):
        assert payload(event) == to_record(event)[1], event


def test_current_state_columns(store: Store, db_path: Path) -> None:
    run_id = new_run(store)
    writer = store.writer(run_id)
    for event in full_run(run_id):
        writer.emit(event)
    [(status, started, finished, pid, host, beat)] = rows(
        db_path, "select status, started_at, finished_at, pid, host, heartbeat_at from runs"
    )
    assert (status, started, finished, pid, beat) == ("failed", CREATED + 1, CREATED + 9, 4242, CREATED + 1)
    assert host == "builder"
    stages = rows(
        db_path, "select name, status, attempts, started_at, finished_at from stages order by position"
    )
    assert stages == [
        ("build", "succeeded", 2, CREATED + 2, CREATED + 5),
        ("test", "failed", 1, CREATED + 6, CREATED + 7.5),
        ("deploy", "skipped", 0, None, CREATED + 8),
    ]
    [(command, log_path)] = rows(db_path, "select command, log_path from stage_attempts where attempt = 2")
    assert (command, log_path) == ("make", "logs/r/build.2.log")


def test_a_retry_keeps_the_stage_running_and_unfinished(store: Store, db_path: Path) -> None:
    run_id = new_run(store)
    writer = store.writer(run_id)
    writer.emit(StageStarted(run_id, "build", 1, CREATED + 1, "b.log"))
    writer.emit(
        StageFinished(run_id, "build", 1, CREATED + 2, StageStatus.FAILED, 1, "boom", will_retry=True)
    )
    assert rows(db_path, "select status, finished_at, reason from stages where name = 'build'") == [
        ("running", None, "boom")
    ]
    assert store.run_state(run_id).stages["build"].status is StageStatus.RUNNING


def test_outputs_are_kept_when_a_later_attempt_reports_none(store: Store) -> None:
    run_id = new_run(store)
    writer = store.writer(run_id)
    writer.emit(StageStarted(run_id, "build", 1, CREATED + 1, "b.log"))
    writer.emit(StageFinished(run_id, "build", 1, CREATED + 2, StageStatus.FAILED, 1, "x", True, {"k": "v"}))
    writer.emit(StageStarted(run_id, "build", 2, CREATED + 3, "b.log"))
    writer.emit(StageFinished(run_id, "build", 2, CREATED + 4, StageStatus.SUCCEEDED, 0))
    assert store.run_state(run_id).stages["build"].outputs == {"k": "v"}


def test_a_stage_not_listed_at_creation_is_added_last(store: Store) -> None:
    run_id = new_run(store, stages=["build", "deploy"])
    writer = store.writer(run_id)
    writer.emit(StageStarted(run_id, "undeploy", 1, CREATED + 1, "u.log"))
    writer.emit(StageSkipped(run_id, "notify", CREATED + 2, "not configured"))
    state = store.run_state(run_id)
    assert list(state.stages) == ["build", "deploy", "undeploy", "notify"]
    assert state.stages["undeploy"].status is StageStatus.RUNNING


def test_restarting_an_attempt_replaces_its_row(store: Store, db_path: Path) -> None:
    # A resumed run may re-run the attempt a crash interrupted: the transition must not fail.
    run_id = new_run(store)
    writer = store.writer(run_id)
    writer.emit(StageStarted(run_id, "build", 1, CREATED + 1, "old.log"))
    writer.emit(StageStarted(run_id, "build", 1, CREATED + 5, "new.log"))
    assert rows(db_path, "select started_at, log_path from stage_attempts") == [(CREATED + 5, "new.log")]
    assert len(store.run_events(run_id)) == 2


def test_log_lines_are_not_stored(store: Store, db_path: Path) -> None:
    run_id = new_run(store)
    store.writer(run_id).emit(StageLogLine(run_id, "build", "hello"))
    assert rows(db_path, "select count(*) from run_events") == [(0,)]


def test_writer_for_an_unknown_run(store: Store) -> None:
    with pytest.raises(NotFoundError, match='unknown run "nope"'):
        store.writer("nope")


def test_an_event_for_another_run_is_refused(store: Store, db_path: Path) -> None:
    run_id = new_run(store)
    with pytest.raises(ValueError):
        store.writer(run_id).emit(RunStarted("someone-else", CREATED, pid=1))
    assert rows(db_path, "select count(*) from run_events") == [(0,)]


def test_a_failing_transition_leaves_no_event_row(store: Store, db_path: Path) -> None:
    run_id = new_run(store)
    writer = store.writer(run_id)
    # The state update fails after the event row was inserted: both must roll back.
    store._db.conn.execute("create trigger boom before update on runs begin select raise(abort, 'boom'); end")
    with pytest.raises(Exception, match="boom"):
        writer.emit(RunStarted(run_id, CREATED + 1, pid=1))
    assert rows(db_path, "select count(*) from run_events") == [(0,)]
    assert store.run_state(run_id).status is RunStatus.PENDING


def test_heartbeat(store: Store, db_path: Path) -> None:
    run_id = new_run(store)
    store.heartbeat(run_id, CREATED + 60)
    assert rows(db_path, "select heartbeat_at from runs") == [(CREATED + 60,)]
    with pytest.raises(NotFoundError):
        store.heartbeat("nope", CREATED)
