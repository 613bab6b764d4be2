"""When stages fail: rollback, repair loops, and the pipeline's handlers (DESIGN §2, §5).

Rollback. When a stage with ``on_failure: rollback`` fails, the run halts, then the
``rollback:`` actions of the succeeded stages between ``rollback_to`` and the failed
stage (the failed stage's own action first, if it has one) run in reverse
topological order. Each action is recorded as a stage of its own, ``rollback:NAME``,
with its log, timeout and attempts; the stage it undoes becomes ``rolled_back``
(a stage without an action is recorded as having nothing to undo). A failing action
stops the rollback and never triggers another; a run is rolled back at most once.

Repair. A gate stage with ``repair: {stage: FIX, max_loops: N}`` that fails runs FIX
(which reads ``${repair.round}``, ``${repair.exit_code}``, ``${repair.log}`` and
``${repair.model}``) and then the gate again, until the gate passes or N rounds are
spent. FIX runs only as a repair: in the normal order it is skipped.

Handlers. ``handlers: {on_success, on_failure, on_cancel, on_exit}`` run after the
DAG, in that outcome (``on_exit`` always, last), as stages ``handler:WHEN:NAME``
that read ``${run.status}`` and ``${run.failed}``. One that already succeeded (a
resumed run) does not run again. A failing handler is recorded; it does not change
the run's outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrate.domain.events import EventSink, StageRolledBack
from orchestrate.domain.state import StageState
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.engine.stages import StageRunner
from orchestrate.graph import Dag
from orchestrate.spec.model import PipelineSpec, StageKind, StageSpec


def _action(name: str, base: StageSpec | None, action: Mapping[str, Any]) -> StageSpec:
    """A rollback action or handler as a stage of its own (never retried)."""
    return StageSpec(
        name=name,
        kind=StageKind.RUN,
        needs=(),
        run=action.get("run"),
        timeout=action.get("timeout"),
        env={**(base.env if base else {}), **{k: str(v) for k, v in (action.get("env") or {}).items()}},
        environment=base.environment if base else None,
        matrix_values=base.matrix_values if base else {},
        secrets=base.secrets if base else (),
    )


class Recovery:
    def __init__(
        self, spec: PipelineSpec, dag: Dag, runner: StageRunner, sink: EventSink, clock: Callable[[], float]
    ) -> None:
        self.spec = spec
        self.dag = dag
        self.runner = runner
        self.sink = sink
        self.clock = clock
        self.specs = {s.name: s for s in spec.stages}
        self.repair_only = {str(s.repair["stage"]) for s in spec.stages if s.repair and s.repair.get("stage")}

    # -- rollback ----------------------------------------------------------------------------------

    def plan(self, failed: str, status: Mapping[str, StageStatus]) -> tuple[str, list[str]]:
        """(rollback_to, the stages to undo, in the order to undo them)."""
        target = self.specs[failed].rollback_to or failed
        between = ({target} | self.dag.descendants(target)) & (self.dag.ancestors(failed) | {failed})
        undo = [n for n in between if status.get(n) is StageStatus.SUCCEEDED]
        if self.specs[failed].rollback:
            undo.append(failed)  # it may have done part of its work before failing
        order = self.dag.topological()
        return target, sorted(set(undo), key=order.index, reverse=True)

    async def rollback(self, target: str, stages: list[str], who: str = "") -> str:
        """Undo ``stages`` in order; the run's reason (``rolled back to X``, or why it stopped)."""
        for name in stages:
            spec = self.specs[name]
            if not spec.rollback:
                self.sink.emit(StageRolledBack(self.runner.cfg.run_id, name, self.clock(), "nothing to undo"))
                continue
            status = await self.runner.run(_action(f"rollback:{name}", spec, spec.rollback))
            if status is not StageStatus.SUCCEEDED:
                return f"rollback of {name} failed; rollback stopped (see stage rollback:{name})"
            self.sink.emit(
                StageRolledBack(self.runner.cfg.run_id, name, self.clock(), f"undone by rollback:{name}")
            )
        return f"rolled back to {target}{who}"

    # -- repair ------------------------------------------------------------------------------------

    async def repair(self, gate: StageSpec, status: StageStatus) -> StageStatus:
        """Fix and retry a failed gate until it passes or its ``max_loops`` are spent."""
        repair = gate.repair or {}
        fix = self.specs.get(str(repair.get("stage")))
        if fix is None:
            return status
        loops = int(repair.get("max_loops", 8))
        models = list(repair.get("models") or [])
        for round_ in range(1, loops + 1):
            last = self.runner.last_attempt(gate.name)
            self.runner.repair.update(
                round=str(round_),
                exit_code="" if last is None or last[0] is None else str(last[0]),
                log=self.runner.log_path(gate.name),
                model=models[min(round_, len(models)) - 1] if models else "",
            )
            await self.runner.run(fix)
            status = await self.runner.run(gate)
            if status is StageStatus.SUCCEEDED:
                break
        return status

    # -- handlers ----------------------------------------------------------------------------------

    async def handlers(
        self, status: RunStatus, failed: list[str], previous: Mapping[str, StageState]
    ) -> None:
        handlers = self.spec.handlers or {}
        when = {
            RunStatus.SUCCEEDED: "on_success",
            RunStatus.FAILED: "on_failure",
            RunStatus.CANCELLED: "on_cancel",
        }
        self.runner.run_info.update(status=status.value, failed=",".join(failed))
        for group in (when.get(status), "on_exit"):
            for i, handler in enumerate(handlers.get(group or "", []) or []):
                name = f"handler:{group}:{handler.get('name') or i + 1}"
                done = previous.get(name)
                if done is not None and done.status is StageStatus.SUCCEEDED:
                    continue
                await self.runner.run(_action(name, None, handler))
