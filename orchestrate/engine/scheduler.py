"""One scheduling loop per run (CONVENTIONS §4).

Stages start the moment their dependencies are satisfied (no level barriers),
at most ``max_parallel`` at a time. Each stage runs in its own task and cancel
scope; results come back over a memory object stream to the single loop, which
alone decides what starts next. ``halt`` cancels running stages (SIGTERM,
grace, SIGKILL) and starts nothing new; ``continue`` and ``optional`` let
dependents run. Approval gates wait without holding a slot. Final events are
emitted shielded from cancellation. The work of one stage is a StageRunner's.
"""

from __future__ import annotations

import collections
import math
import os
import signal
import time
from collections import deque
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrate.domain.approvals import GateDecision, GateOutcome
from orchestrate.domain.events import (
    EventSink,
    RunFinished,
    RunStarted,
    RunWaiting,
    StageFinished,
    StageSkipped,
    StageStarted,
    StageWaiting,
)
from orchestrate.domain.hosts import host_name
from orchestrate.domain.status import STAGE_SATISFIED, OnFailure, RunStatus, StageStatus
from orchestrate.engine.config import (
    ApprovalGate,
    Executor,
    Job,
    RunConfig,
    RunResult,
    SubprocessExecutor,
    format_seconds,
    safe_name,
)
from orchestrate.engine.masking import Masker
from orchestrate.engine.recovery import Recovery
from orchestrate.engine.stages import StageRunner
from orchestrate.graph import Dag
from orchestrate.spec.model import StageKind, StageSpec
from orchestrate.spec.when import WhenContext, evaluate

__all__ = [
    "ApprovalGate",
    "Executor",
    "Job",
    "RunConfig",
    "RunResult",
    "Scheduler",
    "SubprocessExecutor",
    "safe_name",
]


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
        self.clock = clock
        masker = Masker(config.secrets.values()) if config.secrets else None
        self.runner = StageRunner(
            config, sink, executor or SubprocessExecutor(masker=masker), clock, lambda: self.stopping
        )
        self.outputs = self.runner.outputs
        self.attempts = self.runner.attempts
        self.rollback_for: str | None = None  # the stage whose failure rolls the run back
        self.rollback_reason: str | None = None
        self.dag = Dag.from_spec(config.spec)
        self.specs = {s.name: s for s in config.spec.stages}
        self.status: dict[str, StageStatus] = {}
        self.waiting = {n: len(self.dag.preds[n]) for n in self.dag.order}
        self.ready: deque[str] = deque()
        self.scopes: dict[str, anyio.CancelScope] = {}
        self.running = 0
        self.gated = 0  # of the running tasks, those waiting at an approval gate (they use no slot)
        self.parked: set[str] = set()  # gates left open for another process (--no-wait)
        self.pushbacks: dict[str, GateDecision] = {}
        self.iterations: dict[str, int] = {}
        self.waiting_shown = False
        self.group_running: collections.Counter[str] = collections.Counter()
        self.stopping: str | None = None  # why no new stage may start
        self.cancelled = False
        self.failures: list[str] = []
        self.recovery = Recovery(config.spec, self.dag, self.runner, sink, clock)
        self._restore()

    # -- public ----------------------------------------------------------------------------------------

    def request_cancel(self, reason: str = "cancelled") -> None:
        """Stop the run as ``halt`` does and end it ``cancelled`` (Ctrl-C, or a cancel from elsewhere)."""
        if not self.cancelled:
            self.cancelled = True
            self._halt(reason)

    async def run(self) -> RunResult:
        os.makedirs(self.cfg.log_dir, exist_ok=True)
        self.sink.emit(RunStarted(self.cfg.run_id, self.clock(), os.getpid(), host_name()))
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
        if self.rollback_for is not None and not self.cancelled:
            target, stages = self.recovery.plan(self.rollback_for, self.status)
            self.rollback_reason = await self.recovery.rollback(target, stages)
        result = self._result(timed_out)
        if result.status is not RunStatus.WAITING_APPROVAL and self.cfg.spec.handlers:
            await self.recovery.handlers(result.status, self.failures, self.cfg.previous)
        with anyio.CancelScope(shield=True):
            if result.status is RunStatus.WAITING_APPROVAL:  # not finished: another process goes on later
                self.sink.emit(RunWaiting(self.cfg.run_id, self.clock(), True))
            else:
                self.sink.emit(RunFinished(self.cfg.run_id, self.clock(), result.status, result.reason))
        return result

    # -- the loop --------------------------------------------------------------------------------------

    def _restore(self) -> None:
        for name, state in self.cfg.previous.items():
            self.attempts[name] = state.attempt
            if name not in self.specs:
                continue  # a rollback action or a handler: not part of the DAG
            if state.status in STAGE_SATISFIED and name not in self.cfg.rerun:
                self.status[name] = state.status
                self.outputs[name] = dict(state.outputs)
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
        self._skipped(name, decision.reason)
        return True

    def _skipped(self, name: str, reason: str) -> None:
        self.sink.emit(StageSkipped(self.cfg.run_id, name, self.clock(), reason))
        self.status[name] = StageStatus.SKIPPED
        self._release(name)

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
        while self.ready and self.running - self.gated < self.cfg.max_parallel and self.stopping is None:
            name = self.ready.popleft()
            spec = self.specs[name]
            if spec.when is not None and self._skip(name):
                continue
            if name in self.recovery.repair_only:
                self._skipped(name, "runs only to repair a failed gate")
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
        self._show_waiting()

    async def _settle(self, item: tuple[str, StageStatus]) -> None:
        name, status = item
        self.running -= 1
        del self.scopes[name]
        if self.cfg.budget is not None and self.cfg.budget.stop is not None:
            self._halt(self.cfg.budget.stop)  # a budget's on_exceed: halt (engine.budget)
        spec = self.specs[name]
        if spec.group is not None:
            self.group_running[spec.group] -= 1
        self._show_waiting()
        if name in self.pushbacks:
            self._rewind(name, self.pushbacks.pop(name))
            return
        if name in self.parked:
            return
        self.status[name] = status
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
                if spec.on_failure is OnFailure.ROLLBACK and self.rollback_for is None:
                    self.rollback_for = name  # undone once the running stages have stopped
                self._halt(f"stage {name} failed")
        elif (
            status is StageStatus.CANCELLED
            and self.stopping is None  # cancelled by fail-fast: the group failed already
            and (spec.optional or spec.on_failure is OnFailure.CONTINUE)
        ):
            self._release(name)

    def _show_waiting(self) -> None:
        """The run waits for approvals when a gate is open and nothing else runs."""
        waiting = self.gated > 0 and self.running == self.gated
        if waiting != self.waiting_shown:
            self.waiting_shown = waiting
            self.sink.emit(RunWaiting(self.cfg.run_id, self.clock(), waiting))

    def _rewind(self, gate: str, decision: GateDecision) -> None:
        """Pushed back: run ``rewind_to`` and what follows it up to the gate again, then ask again."""
        target = decision.rewind_to or gate
        again = ({target} | self.dag.descendants(target)) & (self.dag.ancestors(gate) | {gate, target})
        again.add(gate)
        self.iterations[gate] = decision.iteration
        self.runner.approval.update(feedback=decision.feedback or "", iteration=str(decision.iteration))
        for name in again:
            self.status.pop(name, None)
            self.outputs.pop(name, None)
        released = {n for n, s in self.status.items() if s in STAGE_SATISFIED or self._continues(n, s)}
        for name in self.dag.order:
            if name not in self.status and name not in self.scopes:
                self.waiting[name] = sum(1 for p in self.dag.preds[name] if p not in released)
        self.ready = deque(
            n
            for n in self.dag.order
            if n not in self.status and n not in self.scopes and self.waiting[n] == 0
        )

    def _continues(self, name: str, status: StageStatus) -> bool:
        spec = self.specs[name]
        return status is StageStatus.FAILED and (spec.optional or spec.on_failure is OnFailure.CONTINUE)

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
        if self.rollback_reason is not None:
            return RunResult(RunStatus.FAILED, self.rollback_reason)
        if self.cfg.budget is not None and self.cfg.budget.stop is not None:
            return RunResult(RunStatus.FAILED, self.cfg.budget.stop)
        if self.parked and self.stopping is None:
            gates = ", ".join(sorted(self.parked))
            return RunResult(RunStatus.WAITING_APPROVAL, f"waiting for approval: {gates}")
        if self.failures:
            names = ", ".join(self.failures)
            return RunResult(RunStatus.FAILED, f"stage{'s' if len(self.failures) > 1 else ''} {names} failed")
        unsettled = [n for n in self.dag.order if n not in self.status]
        if unsettled:  # nothing running, nothing ready, not done: report it rather than hang
            return RunResult(RunStatus.FAILED, f"deadlock: {', '.join(unsettled)} can never start")
        return RunResult(RunStatus.SUCCEEDED)

    async def rollback_only(self, to: str | None, who: str) -> RunResult:
        """``pipeline rollback``: undo a finished run's succeeded stages (from ``to`` on) in reverse order."""
        self.sink.emit(RunStarted(self.cfg.run_id, self.clock(), os.getpid(), host_name()))
        done = [n for n in self.dag.topological() if self.status.get(n) is StageStatus.SUCCEEDED]
        if to is not None:
            later = self.dag.descendants(to)
            done = [n for n in done if n == to or n in later]
        target = to or (done[0] if done else "the start")
        reason = await self.recovery.rollback(target, list(reversed(done)), who=f" by {who}")
        result = RunResult(RunStatus.FAILED, reason)
        self.sink.emit(RunFinished(self.cfg.run_id, self.clock(), result.status, result.reason))
        return result

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
            if spec.requires_approval:
                status = await self._approved_then_run(spec)
            else:
                status = await self.runner.run(spec)
            if status is StageStatus.FAILED and spec.repair:
                status = await self.recovery.repair(spec, status)
        await send.send((spec.name, status))

    async def _approved_then_run(self, spec: StageSpec) -> StageStatus:
        """A gated stage: open the request, wait for the decision, then do the work (if any)."""
        gate = self.cfg.gate
        pure = spec.kind is StageKind.GATE
        attempt = self.attempts.get(spec.name, 0) + 1
        log_path = self.runner.log_path(spec.name)
        if gate is None:
            return self.runner.finish_early(spec.name, attempt, log_path, "no approval gate is configured")
        request_id, hint = await gate.open(spec, self.iterations.get(spec.name, 1))
        if pure:  # the gate is the stage's one attempt: its duration is the wait
            self.attempts[spec.name] = attempt
            self.sink.emit(
                StageStarted(
                    self.cfg.run_id, spec.name, attempt, self.clock(), log_path, f"approval {request_id}"
                )
            )
        self.sink.emit(StageWaiting(self.cfg.run_id, spec.name, self.clock(), request_id, hint))
        self.gated += 1
        self._show_waiting()
        try:
            decision = await gate.wait(request_id)
            while decision.outcome is GateOutcome.REOPENED and decision.request_id:
                self.sink.emit(
                    StageWaiting(self.cfg.run_id, spec.name, self.clock(), decision.request_id, decision.hint)
                )
                decision = await gate.wait(decision.request_id)
        except anyio.get_cancelled_exc_class():
            if pure:
                with anyio.CancelScope(shield=True):
                    self.sink.emit(
                        StageFinished(
                            self.cfg.run_id,
                            spec.name,
                            attempt,
                            self.clock(),
                            StageStatus.CANCELLED,
                            error=self.stopping or "cancelled",
                        )
                    )
            raise
        finally:
            self.gated -= 1
        now = self.clock()
        if decision.outcome is GateOutcome.SUSPENDED:
            self.parked.add(spec.name)
            return StageStatus.WAITING_APPROVAL
        if decision.outcome is GateOutcome.PUSHED_BACK:
            self.pushbacks[spec.name] = decision
            if pure:
                self.sink.emit(
                    StageFinished(
                        self.cfg.run_id, spec.name, attempt, now, StageStatus.CANCELLED, error=decision.reason
                    )
                )
            return StageStatus.PENDING
        if decision.outcome is GateOutcome.REJECTED:
            if pure:
                self.sink.emit(
                    StageFinished(
                        self.cfg.run_id, spec.name, attempt, now, StageStatus.FAILED, error=decision.reason
                    )
                )
                return StageStatus.FAILED
            return self.runner.finish_early(spec.name, attempt, log_path, decision.reason)
        if pure:
            outputs = {"approved_by": decision.reason}
            self.sink.emit(
                StageFinished(
                    self.cfg.run_id, spec.name, attempt, now, StageStatus.SUCCEEDED, 0, None, False, outputs
                )
            )
            return StageStatus.SUCCEEDED
        return await self.runner.run(spec)
