"""Reading runs back: state, record, definition, id prefixes, unknown runs."""

from __future__ import annotations

import json

import pytest

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.events import RunStarted, StageStarted
from orchestrate.domain.state import RunState
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store import Store
from tests.store.helpers import CREATED, DIGEST, full_run, new_run


def test_a_new_run_is_pending_with_pending_stages_in_order(store: Store) -> None:
    run_id = new_run(store, stages=["z", "a", "m"], variables={"env": "prod"})
    state = store.run_state(run_id)
    assert state == RunState.new(run_id, "demo", ["z", "a", "m"], CREATED, {"env": "prod"})
    assert list(state.stages) == ["z", "a", "m"]
    assert all(s.status is StageStatus.PENDING for s in state.stages.values())
    assert store.run_events(run_id) == []


def test_run_definition(store: Store) -> None:
    run_id = new_run(store)
    assert store.run_definition(run_id) == ("name: demo\n", DIGEST)


def test_run_record(store: Store) -> None:
    run_id = new_run(store, variables={"env": "staging"})
    writer = store.writer(run_id)
    for event in full_run(run_id):
        writer.emit(event)
    record = store.run_record(run_id)
    json.dumps(record)  # JSON-ready
    assert {k: record[k] for k in ("id", "pipeline", "version", "digest", "status", "reason")} == {
        "id": run_id,
        "pipeline": "demo",
        "version": 1,
        "digest": DIGEST,
        "status": "failed",
        "reason": 'stage "test" failed',
    }
    assert record["variables"] == {"env": "staging"}
    assert (record["created_at"], record["started_at"], record["finished_at"]) == (
        CREATED,
        CREATED + 1,
        CREATED + 9,
    )
    assert record["duration_seconds"] == 8
    build, test, deploy = record["stages"]
    assert build["name"] == "build" and build["status"] == "succeeded"
    assert build["outputs"] == {"artifact": "a.whl"}
    assert build["duration_seconds"] == 3  # first start to last finish, retries included
    assert build["attempts"][0] == {
        "attempt": 1,
        "status": "failed",
        "exit_code": 2,
        "error": "exit 2",
        "started_at": CREATED + 2,
        "finished_at": CREATED + 3,
        "duration_seconds": 1,
        "log_path": "logs/r/build.log",
    }
    assert test["reason"] == "2 tests failed" and test["duration_seconds"] == 1.5
    assert deploy["status"] == "skipped" and deploy["attempts"] == [] and deploy["duration_seconds"] is None


def test_durations_of_an_active_run_run_to_now(store: Store) -> None:
    run_id = new_run(store)
    writer = store.writer(run_id)
    writer.emit(RunStarted(run_id, CREATED + 1, pid=1))
    writer.emit(StageStarted(run_id, "build", 1, CREATED + 2, "b.log"))
    record = store.run_record(run_id, now=CREATED + 12)
    assert record["status"] == RunStatus.RUNNING
    assert record["duration_seconds"] == 11
    assert record["stages"][0]["duration_seconds"] == 10
    assert record["stages"][0]["attempts"][0]["duration_seconds"] == 10
    assert record["stages"][1]["duration_seconds"] is None


@pytest.mark.parametrize(
    "read", [Store.run_state, Store.run_events, Store.run_definition, Store.run_record, Store.resolve_run_id]
)
def test_an_unknown_run_is_not_found(store: Store, read) -> None:  # type: ignore[no-untyped-def]
    new_run(store)
    with pytest.raises(NotFoundError, match='unknown run "01zzz"') as caught:
        read(store, "01zzz")
    assert caught.value.hint


def test_resolve_run_id(store: Store) -> None:
    ids = ["01aaaa0000000000", "01aaab0000000000", "01abcd0000000000", "01ab"]
    for run_id in ids:
        new_run(store, run_id)
    assert store.resolve_run_id("01abc") == "01abcd0000000000"
    assert store.resolve_run_id("01AAAB") == "01aaab0000000000"  # typed in capitals
    assert store.resolve_run_id("01aaaa0000000000") == "01aaaa0000000000"
    assert store.resolve_run_id("01ab") == "01ab"  # an exact id wins over longer ones
    with pytest.raises(
        UsageError, match=r'"01aa" is ambiguous: it matches 01aaaa0000000000, 01aaab0000000000$'
    ):
        store.resolve_run_id("01aa")
    with pytest.raises(NotFoundError):
        store.resolve_run_id("02")
    with pytest.raises(UsageError):
        store.resolve_run_id(" ")


def test_an_ambiguous_prefix_lists_at_most_five(store: Store) -> None:
    for i in range(8):
        new_run(store, f"01x{i}")
    with pytest.raises(UsageError) as caught:
        store.resolve_run_id("01x")
    assert (
        caught.value.message == 'run id "01x" is ambiguous: it matches 01x0, 01x1, 01x2, 01x3, 01x4 and more'
    )
    assert caught.value.hint == "type more characters of the run id"
