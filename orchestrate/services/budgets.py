"""Budgets (issue 10): the engine's BudgetGuard, wired to the store's history and approvals.

The forecast of a stage is the P95 (nearest rank: the ⌈0.95·n⌉-th smallest) of the cost and
of the tokens of its newest attempts (at most 200), failed ones included, with the same
configured model (the run's model variant for the stage, else the agent's ``model:``; any
model when none is configured) in the same pipeline, from ``task_metrics``; with no such attempt there is no forecast, and the check
uses the spend so far alone. ``on_exceed: approval`` opens an ordinary approval request
(``orchestrate approval list`` shows it, as stage ``NAME:budget``) whose audit trail
carries the forecast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrate.domain.approvals import (
    ApprovalRequest,
    AuditEntry,
    GateOutcome,
    OnTimeout,
    RequestStatus,
    expand,
)
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.state import RunState
from orchestrate.engine.budget import BudgetGuard, Forecast, Limit, money
from orchestrate.services.approvals import StoreGate, approver_groups, hint
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec, StageSpec

if TYPE_CHECKING:
    from orchestrate.store import Store

HISTORY = 200  # attempts a forecast looks back over


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile: the ⌈0.95·n⌉-th smallest value."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def forecaster(store: Store, pipeline: str):  # type: ignore[no-untyped-def]
    table = store.experiments()

    def forecast(stage: StageSpec, model: str | None) -> Forecast:
        task_type = stage.group or stage.name
        what = f"{task_type} × {model or 'any model'}"
        rows = table.stage_usage(pipeline, task_type, model, HISTORY)
        costs = [c for c, _ in rows if c is not None]
        tokens = [t for _, t in rows if t is not None]
        if not rows:
            return Forecast(None, None, 0, f"none: no history for {what}")
        cost = p95(costs) if costs else None
        used = int(p95(tokens)) if tokens else None
        shown = ", ".join(
            x for x in (money(cost) if cost is not None else "", f"{used:,} tokens" if used else "") if x
        )
        n = len(rows)
        return Forecast(
            cost, used, n, f"{shown or 'nothing'}: P95 of {n} attempt{'s' if n != 1 else ''} of {what}"
        )

    return forecast


class StoreBudgetApprovals:
    """Requests to go over a budget, as approval requests of stage ``NAME:budget``."""

    def __init__(self, settings: Settings, store: Store, run: RunState, spec: PipelineSpec) -> None:
        self.settings = settings
        self.store = store
        self.run = run
        self.spec = spec
        self.gate = StoreGate(settings, store, run, wait=True)

    async def open(self, stage: StageSpec, message: str) -> tuple[str, str]:
        limit = Limit.of(stage.budget) or Limit.of(self.spec.budget) or Limit()
        approvers = (
            limit.approvers or stage.approvers or ((self.run.started_by,) if self.run.started_by else ())
        )
        now = time.time()
        request = ApprovalRequest(
            id=new_run_id(now),
            run_id=self.run.run_id,
            stage=f"{stage.name}:budget",
            iteration=1,
            status=RequestStatus.PENDING,
            approvers=tuple(approvers),
            eligible=expand(approvers, approver_groups(self.settings)),
            quorum=1,
            created_at=now,
            deadline=None,
            on_timeout=OnTimeout.REJECT,
            started_by=self.run.started_by,
            pipeline=self.run.pipeline,
        )
        self.store.open_approval(request, AuditEntry(now, "requested", comment=message))
        return request.id, hint(request)

    async def wait(self, request_id: str) -> tuple[bool, str]:
        decision = await self.gate.wait(request_id)
        return decision.outcome is GateOutcome.APPROVED, decision.reason


def guard(settings: Settings, store: Store, run: RunState, spec: PipelineSpec) -> BudgetGuard | None:
    """The run's budget guard; None when neither the pipeline nor a stage has a budget."""
    if not spec.budget and not any(s.budget for s in spec.stages):
        return None
    return BudgetGuard(
        spec,
        forecaster(store, spec.name),
        StoreBudgetApprovals(settings, store, run, spec),
        run.stages,
        time.time,
    )
