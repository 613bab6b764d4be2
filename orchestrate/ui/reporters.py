"""Reporters are event sinks (CONVENTIONS §9): live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, RenderableType
from rich.live import Live

from orchestrate.domain.events import (
    RunEvent,
)
from orchestrate.domain.state import RunState, apply
from orchestrate.domain.status import StageStatus
from orchestrate.ui.run_view import run_view

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


def watch(console: Console, frame: Callable[[], tuple[RenderableType, bool]], interval: float = 2.0) -> None:
    """Redraw ``frame()`` every ``interval`` seconds until it says it is done, or Ctrl-C (exit 0)."""
    renderable, done = frame()
    try:
        with Live(renderable, console=console, auto_refresh=False) as live:
            while not done:
                time.sleep(interval)
                renderable, done = frame()
                live.update(renderable, refresh=True)
    except KeyboardInterrupt:
        return  # stopping watching is not an error
