"""Renderers checked as text from a capture console (CONVENTIONS §14)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from orchestrate.domain.events import RunFinished, RunStarted, StageFinished, StageStarted
from orchestrate.domain.state import RunState, fold
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.ui.plain import PlainReporter
from orchestrate.ui.reporters import LiveReporter, last_line
from orchestrate.ui.run_view import run_view
from orchestrate.ui.text import format_duration


def render(renderable: object, width: int = 120) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def state_mid_run(tmp_path: Path) -> RunState:
    log = tmp_path / "b.log"
    log.write_text("step 1\nstep 2 of 3 [ok]\n\n")
    initial = RunState.new("r1", "ci", ["a", "b", "c"], 100.0)
    return fold(
        initial,
        [
            RunStarted("r1", 100.0, 42),
            StageStarted("r1", "a", 1, 100.0, str(tmp_path / "a.log")),
            StageFinished("r1", "a", 1, 101.5, StageStatus.SUCCEEDED, 0),
            StageStarted("r1", "b", 1, 101.5, str(log)),
        ],
    )


def test_run_view_shows_each_stage_with_status_attempt_duration_and_last_line(tmp_path: Path) -> None:
    state = state_mid_run(tmp_path)
    text = render(run_view(state, now=103.0, last_lines={"b": last_line(str(tmp_path / "b.log"))}))
    assert "ci run r1" in text and "running" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "succeeded" in lines["a"] and "1.50s" in lines["a"]
    assert "running" in lines["b"] and "1.50s" in lines["b"] and "step 2 of 3 [ok]" in lines["b"]
    assert "pending" in lines["c"]
    assert "1 pending" in text and "1 running" in text and "1 succeeded" in text


def test_finished_run_shows_not_started_stages_and_failed_logs(tmp_path: Path) -> None:
    state = fold(
        state_mid_run(tmp_path),
        [
            StageFinished("r1", "b", 1, 104.0, StageStatus.FAILED, 2, "exit code 2"),
            RunFinished("r1", 104.0, RunStatus.FAILED, "stage b failed"),
        ],
    )
    text = render(run_view(state, now=200.0))
    assert "not started" in text and "exit code 2" in text
    assert "(stage b failed)" in text and "4.00s" in text  # run duration stops at finish, not now
    assert f"b: {tmp_path / 'b.log'}" in text


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (0.25, 12.34, 75, 600, 3600, 3720)] == [
        "0.25s",
        "12.3s",
        "1m15s",
        "10m",
        "1h",
        "1h02m",
    ]


def test_live_reporter_draws_the_table_on_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    initial = RunState.new("r1", "ci", ["a"], 100.0)
    with LiveReporter(console, initial, refresh_per_second=20) as live:
        live.emit(RunStarted("r1", 100.0, 1))
        live.emit(StageStarted("r1", "a", 1, 100.0, str(tmp_path / "a.log")))
        live.emit(StageFinished("r1", "a", 1, 100.5, StageStatus.SUCCEEDED, 0))
        live.emit(RunFinished("r1", 100.5, RunStatus.SUCCEEDED))
    drawn = out.getvalue()
    assert "ci run r1" in drawn and "succeeded" in drawn and "0.50s" in drawn


def test_plain_reporter_prints_one_line_per_transition(tmp_path: Path) -> None:
    out = io.StringIO()
    reporter = PlainReporter(out, RunState.new("r1", "ci", ["a"], 100.0))
    for event in (
        RunStarted("r1", 100.0, 1),
        StageStarted("r1", "a", 1, 100.0, "a.log", "make build\nmake install"),
        StageFinished("r1", "a", 1, 101.0, StageStatus.FAILED, 1, "exit code 1", will_retry=True),
        RunFinished("r1", 101.0, RunStatus.FAILED, "stage a failed"),
    ):
        reporter.emit(event)
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "run r1 of ci started (1 stages)",
        "a started (attempt 1): make build …",
        "a failed in 1.00s: exit code 1 (will retry)",
        "run r1 failed in 1.00s: stage a failed",
    ]
