"""Reporters are event sinks (CONVENTIONS §9): live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import re
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console, RenderableType
from rich.live import Live

from orchestrate.domain.events import (
    RunEvent,
    RunFinished,
    RunStarted,
    StageFinished,
    StageLogLine,
    StageSkipped,
    StageStarted,
)
from orchestrate.domain.state import RunState, apply
from orchestrate.domain.status import StageStatus
from orchestrate.ui.run_view import format_duration, run_view

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def last_line(path: str, window: int = 4096) -> str:
    """The last non-blank line of a log file, cleaned of terminal escapes."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - window))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    for line in reversed(data.replace("\r", "\n").splitlines()):
        line = _CONTROL.sub("", line).strip()
        if line:
            return line
    return ""


class LiveReporter:
    """A Rich Live table, redrawn several times a second from the folded run state."""

    def __init__(self, console: Console, state: RunState, refresh_per_second: float = 8) -> None:
        self.state = state
        self.live = Live(
            get_renderable=self._render,
            console=console,
            refresh_per_second=refresh_per_second,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> LiveReporter:
        self.live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.live.refresh()
        self.live.stop()

    def emit(self, event: RunEvent) -> None:
        self.state = apply(self.state, event)

    def _render(self) -> RenderableType:
        state = self.state  # one consistent snapshot: the engine swaps the reference, never mutates
        lines = {
            s.name: last_line(s.attempts[-1].log_path)
            for s in state.stages.values()
            if s.status is StageStatus.RUNNING and s.attempts
        }
        return run_view(state, time.time(), lines)


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
        elif isinstance(event, StageSkipped):
            self._say(event.at, f"{event.stage} skipped: {event.reason}")
        elif isinstance(event, RunFinished):
            took = format_duration(self.state.duration(event.at))
            why = f": {event.reason}" if event.reason else ""
            self._say(event.at, f"run {event.run_id} {event.status.value} in {took}{why}")
        elif isinstance(event, StageLogLine):
            pass


class StateTracker(_NoScreen):
    """Folds events without showing them (``--json`` prints only the final record)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def emit(self, event: RunEvent) -> None:
        self.state = apply(self.state, event)
