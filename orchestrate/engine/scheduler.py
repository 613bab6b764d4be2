"""One scheduling loop per run (CONVENTIONS §4).

Stages start the moment their dependencies are satisfied (no level barriers),
at most ``max_parallel`` at a time. Each stage runs in its own task and cancel
scope; results come back over a memory object stream to the single loop, which
alone decides what starts next. ``halt`` cancels running stages (SIGTERM,
grace, SIGKILL) and starts nothing new; ``continue`` and ``optional`` let
dependents run. Final events are emitted shielded from cancellation.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import random
import re
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrate.domain.events import (
    EventSink,
    RunFinished,
    RunStarted,
    StageFinished,
    StageSkipped,
    StageStarted,
)
from orchestrate.domain.records import EventInfo
from orchestrate.domain.state import StageState
from orchestrate.domain.status import STAGE_SATISFIED, OnFailure, RunStatus, StageStatus
from orchestrate.engine.masking import Masker, mask_text
from orchestrate.engine.outputs import OutputError, read_outputs
from orchestrate.engine.process import ProcessResult, command_argv, display_argv, run_process
from orchestrate.graph import Dag
from orchestrate.spec.interpolate import interpolate
from orchestrate.spec.model import PipelineSpec, StageSpec
from orchestrate.spec.when import WhenContext, evaluate

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,\[\]+-]")


def safe_name(stage: str) -> str:
    """A stage name as a file name (logs/<run>/<stage>.log)."""
    return _UNSAFE.sub("_", stage)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"


@dataclass(frozen=True)
class Job:
    run_id: str
    stage: str
    attempt: int
    argv: tuple[str, ...]
    env: Mapping[str, str]
    log_path: str
    output_path: str
    # Called once, as soon as the work has started (with its process id, if it has one).
    on_start: Callable[[int | None], None] = lambda pid: None


class Executor(Protocol):
    """The seam between scheduling and doing: the engine's tests swap it for a fake."""

    async def run(self, job: Job) -> ProcessResult: ...


class SubprocessExecutor:
    def __init__(self, grace: float = 5.0, masker: Masker | None = None) -> None:
        self.grace = grace
        self.masker = masker

    async def run(self, job: Job) -> ProcessResult:
        return await run_process(job.argv, job.env, job.log_path, self.grace, job.on_start, self.masker)


@dataclass(frozen=True)
class RunConfig:
    run_id: str
    spec: PipelineSpec
    log_dir: str  # logs/<run>
    workspace: str
    variables: Mapping[str, str] = field(default_factory=dict)
    base_env: Mapping[str, str] = field(default_factory=dict)
    max_parallel: int = 4
    default_timeout: float | None = None
    # Stages as an earlier process left them (resume): succeeded and skipped ones are kept,
    # unless named in ``rerun``; attempt numbers continue from theirs.
    previous: Mapping[str, StageState] = field(default_factory=dict)
    rerun: frozenset[str] = frozenset()
    event: EventInfo | None = None  # what triggered the run: ${event.*}, and when: branch/paths/labels
    # argv that runs pipeline NAME as a child run with these variables (``uses:`` stages)
    child_command: Callable[[str, Mapping[str, str]], list[str]] | None = None
    # Secret values by name: given to the stages that declare them, masked in every log and output.
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    reason: str | None = None


class Scheduler:
    def __init__(
        self,
        config: RunConfig,
        sink: EventSink,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = config
        self.sink = sink
        self.mask: Callable[[str], str] = lambda text: text
        masker = None
        if config.secrets:
            masker = Masker(config.secrets.values())
            values = list(config.secrets.values())
            self.mask = lambda text: mask_text(text, values)
        self.executor = executor or SubprocessExecutor(masker=masker)
        self.clock = clock
        self.dag = Dag.from_spec(config.spec)
        self.specs = {s.name: s for s in config.spec.stages}
        self.status: dict[str, StageStatus] = {}
        self.outputs: dict[str, Mapping[str, str]] = {}
        self.attempts: dict[str, int] = {}
        self.waiting = {n: len(self.dag.preds[n]) for n in self.dag.order}
        self.ready: deque[str] = deque()
        self.scopes: dict[str, anyio.CancelScope] = {}
        self.running = 0
        self.group_running: collections.Counter[str] = collections.Counter()
        self.stopping: str | None = None  # why no new stage may start
        self.cancelled = False
        self.failures: list[str] = []
        self._restore()

    # -- public ----------------------------------------------------------------------------------------

    def request_cancel(self, reason: str = "cancelled") -> None:
        """Stop the run as ``halt`` does and end it ``cancelled`` (Ctrl-C, or a cancel from elsewhere)."""
        if not self.cancelled:
            self.cancelled = True
            self._halt(reason)

    async def run(self) -> RunResult:
        os.makedirs(self.cfg.log_dir, exist_ok=True)
        self.sink.emit(RunStarted(self.cfg.run_id, self.clock(), os.getpid(), socket.gethostname()))
        send, recv = anyio.create_memory_object_stream[tuple[str, StageStatus]](math.inf)
        timed_out = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_signals)
            with anyio.move_on_after(self.cfg.spec.timeout or math.inf) as deadline:
                await self._loop(tg, send, recv)
            if deadline.cancelled_caught:
                timed_out = True
                self._halt(f"pipeline timed out after {format_seconds(self.cfg.spec.timeout or 0)}")
                while self.running:
                    await self._settle(await recv.receive())
            tg.cancel_scope.cancel()
        result = self._result(timed_out)
        with anyio.CancelScope(shield=True):
            self.sink.emit(RunFinished(self.cfg.run_id, self.clock(), result.status, result.reason))
        return result

    # -- the loop --------------------------------------------------------------------------------------

    def _restore(self) -> None:
        for name, state in self.cfg.previous.items():
            self.attempts[name] = state.attempt
            if state.status in STAGE_SATISFIED and name not in self.cfg.rerun:
                self.status[name] = state.status
                self.outputs[name] = state.outputs
        for name in self.status:
            for succ in self.dag.succs[name]:
                self.waiting[succ] -= 1
        self.ready.extend(n for n in self.dag.order if n not in self.status and self.waiting[n] == 0)

    def _skip(self, name: str) -> bool:
        """Evaluate the stage's ``when``; a false one skips it (with the reason) and satisfies dependents."""
        event = self.cfg.event
        ctx = WhenContext(
            branch=event.branch if event else None,
            changed_files=event.changed_files if event else None,
            labels=event.labels if event else (),
            variables=self.cfg.variables,
            outputs=self.outputs,
        )
        decision = evaluate(self.specs[name].when, ctx)
        if decision.run:
            return False
        self.sink.emit(StageSkipped(self.cfg.run_id, name, self.clock(), decision.reason))
        self.status[name] = StageStatus.SKIPPED
        self._release(name)
        return True

    def _release(self, name: str) -> None:
        for succ in self.dag.succs[name]:
            self.waiting[succ] -= 1
            if self.waiting[succ] == 0 and succ not in self.status:
                self.ready.append(succ)

    async def _loop(
        self,
        tg: TaskGroup,
        send: MemoryObjectSendStream[tuple[str, StageStatus]],
        recv: MemoryObjectReceiveStream[tuple[str, StageStatus]],
    ) -> None:
        self._launch(tg, send)
        while self.running:
            await self._settle(await recv.receive())
            self._launch(tg, send)

    def _launch(self, tg: TaskGroup, send: MemoryObjectSendStream[tuple[str, StageStatus]]) -> None:
        deferred: list[str] = []
        while self.ready and self.running < self.cfg.max_parallel and self.stopping is None:
            name = self.ready.popleft()
            spec = self.specs[name]
            if spec.when is not None and self._skip(name):
                continue
            if spec.group is not None:
                limit = (spec.matrix or {}).get("max_parallel")
                if limit is not None and self.group_running[spec.group] >= limit:
                    deferred.append(name)  # its matrix is at its own limit: others may go first
                    continue
                self.group_running[spec.group] += 1
            scope = anyio.CancelScope()
            self.scopes[name] = scope
            self.running += 1
            tg.start_soon(self._stage, self.specs[name], scope, send)
        self.ready.extendleft(reversed(deferred))

    async def _settle(self, item: tuple[str, StageStatus]) -> None:
        name, status = item
        self.running -= 1
        del self.scopes[name]
        self.status[name] = status
        spec = self.specs[name]
        if spec.group is not None:
            self.group_running[spec.group] -= 1
        if status in STAGE_SATISFIED:
            self._release(name)
        elif status is StageStatus.FAILED:
            if not spec.optional:
                self.failures.append(name)
            if spec.group is not None and (spec.matrix or {}).get("fail_fast", True):
                self._fail_fast(spec)
            if spec.optional or spec.on_failure is OnFailure.CONTINUE:
                self._release(name)
            else:
                self._halt(f"stage {name} failed")
        elif (
            status is StageStatus.CANCELLED
            and self.stopping is None  # cancelled by fail-fast: the group failed already
            and (spec.optional or spec.on_failure is OnFailure.CONTINUE)
        ):
            self._release(name)

    def _fail_fast(self, failed: StageSpec) -> None:
        """One instance of a matrix failed: cancel the running ones, skip those not started."""
        for name in self.dag.order:
            sibling = self.specs[name]
            if sibling.group != failed.group or name == failed.name or name in self.status:
                continue
            if name in self.scopes:
                self.scopes[name].cancel()
            else:
                reason = f"not started: fail-fast after {failed.name} failed"
                self.sink.emit(StageSkipped(self.cfg.run_id, name, self.clock(), reason))
                self.status[name] = StageStatus.SKIPPED
                if name in self.ready:
                    self.ready.remove(name)
                self._release(name)

    def _halt(self, reason: str) -> None:
        if self.stopping is None:
            self.stopping = reason
        for scope in self.scopes.values():
            scope.cancel()

    def _result(self, timed_out: bool) -> RunResult:
        if self.cancelled:
            return RunResult(RunStatus.CANCELLED, self.stopping)
        if timed_out:
            return RunResult(RunStatus.FAILED, self.stopping)
        if self.failures:
            names = ", ".join(self.failures)
            return RunResult(RunStatus.FAILED, f"stage{'s' if len(self.failures) > 1 else ''} {names} failed")
        unsettled = [n for n in self.dag.order if n not in self.status]
        if unsettled:  # nothing running, nothing ready, not done: report it rather than hang
            return RunResult(RunStatus.FAILED, f"deadlock: {', '.join(unsettled)} can never start")
        return RunResult(RunStatus.SUCCEEDED)

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.request_cancel(f"cancelled by {signal.Signals(signum).name}")

    # -- one stage -------------------------------------------------------------------------------------

    async def _stage(
        self,
        spec: StageSpec,
        scope: anyio.CancelScope,
        send: MemoryObjectSendStream[tuple[str, StageStatus]],
    ) -> None:
        status = StageStatus.CANCELLED
        with scope:
            status = await self._attempts(spec)
        await send.send((spec.name, status))

    async def _attempts(self, spec: StageSpec) -> StageStatus:
        cfg = self.cfg
        retry = spec.retry
        timeout = spec.timeout or cfg.default_timeout or math.inf
        base = os.path.join(cfg.log_dir, safe_name(spec.name))
        log_path = base + ".log"
        output_path = base + ".out"
        for i in range(retry.max + 1):
            attempt = self.attempts.get(spec.name, 0) + 1
            self.attempts[spec.name] = attempt
            try:
                argv = self._argv(spec)
                env = self._env(spec, attempt, output_path)
            except KeyError as e:
                return self._finish_early(spec.name, attempt, log_path, self._unresolved(e.args[0]))
            if attempt > 1:
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(f"\n--- orchestrate: attempt {attempt} ---\n")
                if os.path.exists(output_path):
                    os.unlink(output_path)
            on_start = self._starter(spec.name, attempt, log_path, self.mask(display_argv(argv)))
            job = Job(cfg.run_id, spec.name, attempt, argv, env, log_path, output_path, on_start)
            try:
                with anyio.move_on_after(timeout) as deadline:
                    result = await self.executor.run(job)
                on_start(None)  # an executor that never said so
            except anyio.get_cancelled_exc_class():
                on_start(None)
                with anyio.CancelScope(shield=True):
                    self.sink.emit(
                        StageFinished(
                            cfg.run_id,
                            spec.name,
                            attempt,
                            self.clock(),
                            StageStatus.CANCELLED,
                            error=self.stopping or "cancelled",
                        )
                    )
                raise
            outputs: dict[str, str] = {}
            error: str | None = None
            code: int | None = None
            if deadline.cancelled_caught:
                error = f"timed out after {format_seconds(timeout)}"
            else:
                code = result.exit_code
                if code == 0:
                    try:
                        outputs = {k: self.mask(v) for k, v in read_outputs(output_path).items()}
                    except OutputError as e:
                        error = self.mask(str(e))
                elif code < 0:
                    error = f"killed by {signal.Signals(-code).name}"
                else:
                    error = result.error or f"exit code {code}"
            status = StageStatus.SUCCEEDED if error is None else StageStatus.FAILED
            again = (
                status is StageStatus.FAILED
                and i < retry.max
                and (retry.exit_codes is None or code in retry.exit_codes)
            )
            self.sink.emit(
                StageFinished(
                    cfg.run_id, spec.name, attempt, self.clock(), status, code, error, again, outputs
                )
            )
            if not again:
                if outputs:
                    self.outputs[spec.name] = outputs
                return status
            try:
                await anyio.sleep(retry.backoff * 2**i * random.uniform(0.8, 1.2))
            except anyio.get_cancelled_exc_class():
                # Stopped while waiting to retry: the failure stands, no further attempt.
                self.sink.emit(
                    StageFinished(cfg.run_id, spec.name, attempt, self.clock(), status, code, error, False)
                )
                return status
        raise AssertionError("unreachable: the last attempt always returns")

    def _argv(self, spec: StageSpec) -> tuple[str, ...]:
        lookup = functools.partial(self._lookup, stage=spec)
        if spec.uses is not None and self.cfg.child_command is not None:
            values = {k: interpolate(str(v), lookup, shell=False) for k, v in spec.with_.items()}
            return tuple(self.cfg.child_command(spec.uses, values))
        return tuple(command_argv(interpolate(spec.run or "", lookup, shell=True)))

    def _starter(self, stage: str, attempt: int, log_path: str, command: str) -> Callable[[int | None], None]:
        """StageStarted, emitted once, when the executor says the work began (so it can carry the pid)."""
        done = False

        def on_start(pid: int | None) -> None:
            nonlocal done
            if not done:
                done = True
                self.sink.emit(
                    StageStarted(self.cfg.run_id, stage, attempt, self.clock(), log_path, command, pid)
                )

        return on_start

    def _finish_early(self, stage: str, attempt: int, log_path: str, error: str) -> StageStatus:
        now = self.clock()
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"orchestrate: {error}\n")
        self.sink.emit(StageStarted(self.cfg.run_id, stage, attempt, now, log_path))
        self.sink.emit(StageFinished(self.cfg.run_id, stage, attempt, now, StageStatus.FAILED, error=error))
        return StageStatus.FAILED

    def _unresolved(self, name: str) -> str:
        stage, _, key = name.removeprefix("stages.").partition(".outputs.")
        if name.startswith("stages.") and key:
            return f'${{{name}}}: stage {stage} wrote no output "{key}"'
        return f"unknown reference ${{{name}}}"

    def _lookup(self, name: str, stage: StageSpec | None = None) -> str | None:
        if name in self.cfg.variables:
            return self.cfg.variables[name]
        if name == "run.id":
            return self.cfg.run_id
        if name.startswith("matrix.") and stage is not None:
            return stage.matrix_values.get(name.removeprefix("matrix."))
        if name.startswith("event."):
            return self.cfg.event.lookup(name) if self.cfg.event else None
        if name.startswith("stages.") and ".outputs." in name:
            producer, _, key = name[len("stages.") :].partition(".outputs.")
            return self.outputs.get(producer, {}).get(key)
        return None

    def _env(self, spec: StageSpec, attempt: int, output_path: str) -> dict[str, str]:
        env = dict(self.cfg.base_env)
        env["ORCHESTRATE_RUN_ID"] = self.cfg.run_id
        env["ORCHESTRATE_PIPELINE"] = self.cfg.spec.name
        env["ORCHESTRATE_STAGE"] = spec.name
        env["ORCHESTRATE_ATTEMPT"] = str(attempt)
        env["ORCHESTRATE_WORKSPACE"] = self.cfg.workspace
        env["ORCHESTRATE_OUTPUT"] = output_path
        if spec.environment:
            env["ORCHESTRATE_ENVIRONMENT"] = spec.environment
        for name in (*self.cfg.spec.secrets, *spec.secrets):
            env[name] = self.cfg.secrets[name]
        for key, value in spec.env.items():
            env[key] = interpolate(value, functools.partial(self._lookup, stage=spec), shell=False)
        return env
