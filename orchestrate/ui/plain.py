"""Reporters that need no Rich: plain lines for pipes and logs, and a silent state tracker.

Kept apart from the live view so a piped ``pipeline run`` never imports Rich (≈20 ms).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from orchestrate.domain.events import (
    BudgetChecked,
    RunEvent,
    RunFinished,
    RunStarted,
    RunWaiting,
    StageFinished,
    StageLogLine,
    StageRolledBack,
    StageSkipped,
    StageStarted,
    StageWaiting,
)
from orchestrate.domain.state import RunState, apply
from orchestrate.ui.budget_text import budget_line
from orchestrate.ui.text import format_duration


def is_terminal() -> bool:
    return sys.stdout.isatty()


class _NoScreen:
    """Reporters that draw nothing between events need no set-up or tear-down."""

    def __enter__(self) -> _NoScreen:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class PlainReporter(_NoScreen):
    """One line per transition, for logs and pipes."""

    def __init__(self, out: TextIO, state: RunState) -> None:
        self.out = out
        self.state = state

    def _say(self, at: float, text: str) -> None:
        self.out.write(f"{time.strftime('%H:%M:%S', time.localtime(at))} {text}\n")
        self.out.flush()

    def emit(self, event: RunEvent) -> None:
        self.state = apply(self.state, event)
        if isinstance(event, RunStarted):
            n = len(self.state.stages)
            self._say(event.at, f"run {event.run_id} of {self.state.pipeline} started ({n} stages)")
        elif isinstance(event, StageStarted):
            lines = (event.command or "").strip().splitlines()
            command = f": {lines[0]}{' …' if len(lines) > 1 else ''}" if lines else ""
            self._say(event.at, f"{event.stage} started (attempt {event.attempt}){command}")
        elif isinstance(event, StageFinished):
            stage = self.state.stages[event.stage]
            took = (
                format_duration(stage.attempts[-1].finished_at - stage.attempts[-1].started_at)
                if stage.attempts and stage.attempts[-1].finished_at
                else ""
            )
            why = f": {event.error}" if event.error else ""
            retry = " (will retry)" if event.will_retry else ""
            self._say(event.at, f"{event.stage} {event.status.value} in {took}{why}{retry}")
        elif isinstance(event, StageRolledBack):
            self._say(event.at, f"{event.stage} rolled back: {event.reason}")
        elif isinstance(event, StageWaiting):
            self._say(event.at, f"{event.stage} {event.reason}")
        elif isinstance(event, RunWaiting):
            self._say(
                event.at, f"run {event.run_id} {'is waiting for approval' if event.waiting else 'goes on'}"
            )
        elif isinstance(event, StageSkipped):
            self._say(event.at, f"{event.stage} skipped: {event.reason}")
        elif isinstance(event, RunFinished):
            took = format_duration(self.state.duration(event.at))
            why = f": {event.reason}" if event.reason else ""
            self._say(event.at, f"run {event.run_id} {event.status.value} in {took}{why}")
        elif isinstance(event, StageLogLine):
            pass
        elif isinstance(event, BudgetChecked) and event.exceeded:
            self._say(event.at, budget_line(event))


class StateTracker(_NoScreen):
    """Folds events without showing them (``--json`` prints only the final record)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def emit(self, event: RunEvent) -> None:
        self.state = apply(self.state, event)
