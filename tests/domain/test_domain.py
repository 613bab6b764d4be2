from __future__ import annotations

import json

from orchestrate.domain.events import (
    RunFinished,
    RunStarted,
    StageFinished,
    StageSkipped,
    StageStarted,
    from_record,
    to_record,
)
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.state import RunState, fold
from orchestrate.domain.status import RunStatus, StageStatus

EVENTS = [
    RunStarted("r", 1.0, 7),
    StageStarted("r", "a", 1, 1.0, "a.log", "make"),
    StageFinished("r", "a", 1, 2.0, StageStatus.FAILED, 75, "exit code 75", will_retry=True),
    StageStarted("r", "a", 2, 3.0, "a.log", "make"),
    StageFinished("r", "a", 2, 4.0, StageStatus.SUCCEEDED, 0, outputs={"k": "v"}),
    StageSkipped("r", "b", 4.0, "when.branch: 'x' does not match 'main'"),
    RunFinished("r", 5.0, RunStatus.SUCCEEDED),
]


def test_events_round_trip_through_their_stored_form() -> None:
    for event in EVENTS:
        kind, payload = to_record(event)
        assert from_record("r", kind, json.loads(json.dumps(payload))) == event


def test_reducer_keeps_every_attempt_and_derives_durations() -> None:
    state = fold(RunState.new("r", "p", ["a", "b"], 0.5), EVENTS)
    a = state.stages["a"]
    assert state.status is RunStatus.SUCCEEDED and state.duration() == 4.0
    assert [x.status for x in a.attempts] == [StageStatus.FAILED, StageStatus.SUCCEEDED]
    assert a.status is StageStatus.SUCCEEDED and a.duration() == 3.0 and a.outputs == {"k": "v"}
    assert state.stages["b"].status is StageStatus.SKIPPED


def test_retrying_stage_stays_running_between_attempts() -> None:
    state = fold(RunState.new("r", "p", ["a"], 0), EVENTS[:3])
    assert state.stages["a"].status is StageStatus.RUNNING
    assert state.stages["a"].duration(now=10.0) == 9.0


def test_run_ids_are_short_unique_and_sort_by_time() -> None:
    ids = [new_run_id(1_700_000_000 + i) for i in range(100)]
    assert ids == sorted(ids) and len(set(ids)) == 100 and all(len(i) == 16 for i in ids)
