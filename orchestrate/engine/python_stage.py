"""``python: pkg.module:function`` stages, run in the run process (DESIGN §6; issue 8).

The function is imported (the workspace is on ``sys.path``) and called with a
StageContext. A plain function runs in a worker thread so the event loop never
blocks; an ``async def`` is awaited. The returned mapping becomes the stage's
outputs (reserved keys carry usage: model, input_tokens, output_tokens,
cost_usd); an exception fails the stage with its traceback in the stage log.
A timeout stops waiting for a thread but cannot stop the thread itself.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import anyio


class PythonStageError(Exception):
    """The reference cannot be imported or called: a stage error, with a message for the user."""


@dataclass
class StageContext:
    run_id: str
    stage: str
    attempt: int
    workspace: str
    variables: Mapping[str, str]
    outputs: Mapping[str, Mapping[str, str]]  # upstream stages' outputs
    log: TextIO  # writes go to the stage log
    env: Mapping[str, str] = field(default_factory=dict)

    def print(self, *args: Any) -> None:
        print(*args, file=self.log, flush=True)


def resolve(ref: str, workspace: str) -> Any:
    module_name, _, func_name = ref.partition(":")
    if workspace not in sys.path:
        sys.path.insert(0, workspace)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PythonStageError(f"python: {ref}: cannot import {module_name} ({e})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise PythonStageError(f"python: {ref}: {module_name} has no function {func_name}")
    return func


async def run_python(ref: str, context: StageContext) -> dict[str, str]:
    """Outputs of the call; PythonStageError for a bad reference; other exceptions propagate."""
    func = resolve(ref, context.workspace)
    if inspect.iscoroutinefunction(func):
        result = await func(context)
    else:
        result = await anyio.to_thread.run_sync(func, context, abandon_on_cancel=True)
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise PythonStageError(f"python: {ref} returned {type(result).__name__}, not a dict of outputs")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in result.items()}


def write_traceback(log: TextIO, error: BaseException) -> str:
    traceback.print_exception(error, file=log)
    log.flush()
    return f"{type(error).__name__}: {error}"
