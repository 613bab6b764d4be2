"""The scheduling loop with real subprocesses, reporting to an in-memory sink (no database)."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import anyio
import pytest

from orchestrate.domain.events import StageStarted
from orchestrate.domain.status import OnFailure, RunStatus, StageStatus
from orchestrate.engine.process import ProcessResult
from orchestrate.engine.scheduler import Job
from orchestrate.spec.model import RetrySpec
from tests.engine.helpers import finished, last, overlap, run, spans, spec, stage


def test_sequential_chain_runs_in_order_and_succeeds(tmp_path: Path) -> None:
    p = spec(stage("a"), stage("b", needs=("a",)), stage("c", needs=("b",)))
    result, rec = run(p, tmp_path)
    assert result.status is RunStatus.SUCCEEDED
    s = spans(rec)
    assert s["a"][1] <= s["b"][0] and s["b"][1] <= s["c"][0]
    assert {n: e.status for n, e in finished(rec).items()} == dict.fromkeys("abc", StageStatus.SUCCEEDED)


def test_independent_stages_overlap(tmp_path: Path) -> None:
    p = spec(stage("a", "sleep 0.3"), stage("b", "sleep 0.3"), stage("c", "sleep 0.3"))
    result, rec = run(p, tmp_path, max_parallel=3)
    assert result.status is RunStatus.SUCCEEDED
    s = spans(rec)
    assert overlap(s["a"], s["b"]) and overlap(s["b"], s["c"])


def test_max_parallel_one_never_overlaps(tmp_path: Path) -> None:
    p = spec(stage("a", "sleep 0.1"), stage("b", "sleep 0.1"), stage("c", "sleep 0.1"))
    _, rec = run(p, tmp_path, max_parallel=1)
    s = sorted(spans(rec).values())
    assert all(x[1] <= y[0] for x, y in itertools.pairwise(s))


def test_ready_stage_starts_without_waiting_for_its_level(tmp_path: Path) -> None:
    # quick → after-quick must start while slow (same level as quick) still runs: no level barrier.
    p = spec(
        stage("slow", "sleep 0.8"), stage("quick", "true"), stage("after-quick", "true", needs=("quick",))
    )
    _, rec = run(p, tmp_path, max_parallel=4)
    s = spans(rec)
    assert s["after-quick"][0] < s["slow"][1]


def test_halt_cancels_running_stages_and_starts_nothing_new(tmp_path: Path) -> None:
    p = spec(
        stage("long", "sleep 30"),
        stage("bad", "sleep 0.2; exit 3"),
        stage("after", "true", needs=("bad",)),
    )
    t0 = time.monotonic()
    result, rec = run(p, tmp_path)
    assert time.monotonic() - t0 < 10
    assert result.status is RunStatus.FAILED and result.reason == "stage bad failed"
    f = finished(rec)
    assert f["bad"].status is StageStatus.FAILED and f["bad"].exit_code == 3
    assert f["long"].status is StageStatus.CANCELLED
    assert "after" not in {e.stage for e in rec.events if isinstance(e, StageStarted)}


def test_continue_lets_dependents_run_but_fails_the_run(tmp_path: Path) -> None:
    p = spec(stage("bad", "exit 1", on_failure=OnFailure.CONTINUE), stage("next", "true", needs=("bad",)))
    result, rec = run(p, tmp_path)
    assert result.status is RunStatus.FAILED
    assert finished(rec)["next"].status is StageStatus.SUCCEEDED


def test_optional_failure_keeps_the_run_green(tmp_path: Path) -> None:
    p = spec(stage("flaky", "exit 1", optional=True), stage("next", "true", needs=("flaky",)))
    result, rec = run(p, tmp_path)
    assert result.status is RunStatus.SUCCEEDED
    assert finished(rec)["flaky"].status is StageStatus.FAILED


def test_retry_only_listed_exit_codes_and_keep_every_attempt(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ] || exit 75"
    )
    p = spec(stage("s", script, retry=RetrySpec(max=3, backoff=0.01, exit_codes=(75,))))
    result, rec = run(p, tmp_path)
    assert result.status is RunStatus.SUCCEEDED
    attempts = [e for e in rec.events if isinstance(e, StageStarted)]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    log = (tmp_path / "logs/r1/s.log").read_text()
    assert "attempt 2" in log and "attempt 3" in log


def test_exit_code_not_listed_is_not_retried(tmp_path: Path) -> None:
    p = spec(stage("s", "exit 1", retry=RetrySpec(max=3, backoff=0.01, exit_codes=(75,))))
    result, rec = run(p, tmp_path)
    assert result.status is RunStatus.FAILED
    assert len([e for e in rec.events if isinstance(e, StageStarted)]) == 1


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    p = spec(stage("s", f"sleep 30 & echo $! > {pids}; sleep 30", timeout=0.5))
    result, rec = run(p, tmp_path)
    assert result.status is RunStatus.FAILED
    assert finished(rec)["s"].error == "timed out after 0.5s"
    child = int(pids.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the kill is asynchronous to reaping by init
            os.kill(child, 0)
            time.sleep(0.05)


def test_pipeline_timeout_bounds_the_run(tmp_path: Path) -> None:
    p = spec(stage("a", "sleep 30"), timeout=0.5)
    t0 = time.monotonic()
    result, rec = run(p, tmp_path)
    assert time.monotonic() - t0 < 10
    assert result.status is RunStatus.FAILED and result.reason == "pipeline timed out after 0.5s"
    assert finished(rec)["a"].status is StageStatus.CANCELLED


def test_stage_environment_and_outputs_flow_downstream(tmp_path: Path) -> None:
    p = spec(
        stage(
            "make",
            'echo "id=$ORCHESTRATE_RUN_ID stage=$ORCHESTRATE_STAGE env=$ORCHESTRATE_ENVIRONMENT" >> "$ORCHESTRATE_OUTPUT"',
            environment="staging",
        ),
        stage("use", "echo got ${stages.make.outputs.id} > used.txt", needs=("make",)),
    )
    os.chdir(tmp_path)
    result, rec = run(p, tmp_path)
    assert result.status is RunStatus.SUCCEEDED
    assert finished(rec)["make"].outputs == {"id": "r1 stage=make env=staging"}
    assert (tmp_path / "used.txt").read_text() == "got r1 stage=make env=staging\n"


def test_variables_are_shell_quoted(tmp_path: Path) -> None:
    hostile = "$(touch pwned); \"'"
    os.chdir(tmp_path)
    p = spec(stage("s", "printf %s ${x} > out.txt"))
    result, _ = run(p, tmp_path, variables={"x": hostile})
    assert result.status is RunStatus.SUCCEEDED
    assert (tmp_path / "out.txt").read_text() == hostile
    assert not (tmp_path / "pwned").exists()


def test_command_not_found_fails_with_127(tmp_path: Path) -> None:
    result, rec = run(spec(stage("s", "no-such-program-xyz --flag")), tmp_path)
    assert result.status is RunStatus.FAILED
    assert finished(rec)["s"].exit_code == 127
    assert "command not found: no-such-program-xyz" in (tmp_path / "logs/r1/s.log").read_text()


class GatedExecutor:
    """A fake executor: each job waits until the test releases it, so order is explicit."""

    def __init__(self) -> None:
        self.events: dict[str, anyio.Event] = {}
        self.started: list[str] = []

    async def run(self, job: Job) -> ProcessResult:
        self.started.append(job.stage)
        await self.events.setdefault(job.stage, anyio.Event()).wait()
        return ProcessResult(0)


def test_cancel_request_stops_the_run_as_cancelled(tmp_path: Path) -> None:
    from orchestrate.domain.events import Recorder
    from orchestrate.engine.scheduler import RunConfig, Scheduler

    executor = GatedExecutor()
    config = RunConfig("r1", spec(stage("a"), stage("b", needs=("a",))), f"{tmp_path}/logs", str(tmp_path))
    rec = Recorder()
    scheduler = Scheduler(config, rec, executor)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(scheduler.run)
            with anyio.fail_after(5):
                while "a" not in executor.started:
                    await anyio.sleep(0.01)
            scheduler.request_cancel("cancelled by test")

    anyio.run(main)
    assert last(rec).status is RunStatus.CANCELLED
    assert finished(rec)["a"].status is StageStatus.CANCELLED
    assert executor.started == ["a"]


def test_resume_keeps_settled_stages_and_continues_attempt_numbers(tmp_path: Path) -> None:
    from orchestrate.domain.state import AttemptState, StageState

    previous = {
        "a": StageState("a", StageStatus.SUCCEEDED, (AttemptState(1, 1.0, 2.0, StageStatus.SUCCEEDED, 0),)),
        "b": StageState("b", StageStatus.RUNNING, (AttemptState(1, 2.0),)),
    }
    p = spec(stage("a"), stage("b", needs=("a",)), stage("c", needs=("b",)))
    result, rec = run(p, tmp_path, previous=previous)
    assert result.status is RunStatus.SUCCEEDED
    started = [(e.stage, e.attempt) for e in rec.events if isinstance(e, StageStarted)]
    assert started == [("b", 2), ("c", 1)]  # a is not re-run; b once, as attempt 2


def test_rerun_runs_a_settled_stage_again(tmp_path: Path) -> None:
    from orchestrate.domain.state import AttemptState, StageState

    done = (AttemptState(1, 1.0, 2.0, StageStatus.SUCCEEDED, 0),)
    previous = {n: StageState(n, StageStatus.SUCCEEDED, done) for n in ("a", "b")}
    p = spec(stage("a"), stage("b", needs=("a",)))
    _, rec = run(p, tmp_path, previous=previous, rerun=frozenset({"b"}))
    assert [(e.stage, e.attempt) for e in rec.events if isinstance(e, StageStarted)] == [("b", 2)]


def test_a_multi_line_script_stops_at_its_first_failing_line(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    result, rec = run(spec(stage("s", "false\ntouch reached")), tmp_path)
    assert result.status is RunStatus.FAILED and finished(rec)["s"].exit_code == 1
    assert not (tmp_path / "reached").exists()
