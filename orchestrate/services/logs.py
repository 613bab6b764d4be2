"""Stage logs: whole files, one attempt's section, or followed as they grow."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrate.domain.errors import NotFoundError
from orchestrate.domain.state import RunState
from orchestrate.domain.status import RUN_TERMINAL

if TYPE_CHECKING:
    from orchestrate.store import Store

# Written by the engine before every attempt after the first (engine/scheduler.py).
_HEADER = re.compile(rb"^\n?--- orchestrate: attempt (\d+) ---\n", re.M)
CHUNK = 1 << 16


@dataclass(frozen=True)
class StageLog:
    stage: str
    path: str
    attempts: int


def stage_logs(state: RunState, stage: str | None) -> list[StageLog]:
    if stage is not None:
        if stage not in state.stages:
            import difflib

            close = difflib.get_close_matches(stage, list(state.stages), n=1)
            raise NotFoundError(
                f'run {state.run_id} has no stage "{stage}"',
                hint=f'did you mean "{close[0]}"?' if close else f"stages: {', '.join(state.stages)}",
            )
        chosen = [state.stages[stage]]
    else:
        chosen = list(state.stages.values())
    return [StageLog(s.name, s.attempts[-1].log_path, s.attempt) for s in chosen if s.attempts]


def attempt_section(data: bytes, attempt: int) -> bytes:
    """The output of one attempt from a log holding all of them."""
    starts = {1: 0}
    ends: dict[int, int] = {}
    for m in _HEADER.finditer(data):
        n = int(m.group(1))
        ends[n - 1] = m.start()
        starts[n] = m.end()
    if attempt not in starts:
        raise NotFoundError(f"no attempt {attempt} in this log (attempts: 1..{max(starts)})")
    return data[starts[attempt] : ends.get(attempt, len(data))]


def read_chunks(path: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except FileNotFoundError:
        return


def follow(store: Store, run_id: str, stage: str | None, poll: float = 0.2) -> Iterator[tuple[str, bytes]]:
    """(stage, new complete lines) as logs grow, until the run ends and every log is drained."""
    offsets: dict[str, int] = {}
    partial: dict[str, bytes] = {}
    while True:
        state = store.run_state(run_id)
        done = state.status in RUN_TERMINAL
        for log in stage_logs(state, stage):
            try:
                with open(log.path, "rb") as f:
                    f.seek(offsets.get(log.path, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            if not data:
                continue
            offsets[log.path] = offsets.get(log.path, 0) + len(data)
            data = partial.pop(log.path, b"") + data
            head, sep, tail = data.rpartition(b"\n")
            if tail:
                partial[log.path] = tail
            if sep:
                yield log.stage, head + sep
        if done:
            for path, rest in partial.items():
                name = next(
                    (s.name for s in state.stages.values() if s.attempts and s.attempts[-1].log_path == path),
                    "",
                )
                yield name, rest + b"\n"
            return
        time.sleep(poll)
