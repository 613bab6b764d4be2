"""Budgets (issue 10): cost and token limits of a run and of its stages.

Before each attempt of a stage starts, the guard adds the stage's forecast (from history:
the P95 of that stage with that model, given by the service layer) to what was spent so
far, per scope: the run (the pipeline's ``budget:``) and the stage (its own). Usage
arrives with each attempt's end (its reserved outputs), and is checked then too. When a
limit would be or is exceeded, ``on_exceed`` applies:

halt      the stage fails with the reason and the run stops (no new stage starts)
continue  a warning is recorded (a ``BudgetChecked`` event with ``exceeded``) and the run goes on
approval  an approval request showing the forecast opens; the stage starts once it is
          approved, fails if rejected (asked once per scope and run)

Every check is a ``BudgetChecked`` event: ``pipeline status`` and the live table show
the latest per scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from orchestrate.domain.events import BudgetChecked, EventSink, StageWaiting
from orchestrate.domain.state import StageState
from orchestrate.spec.model import PipelineSpec, StageSpec

RUN = "run"  # the scope of the pipeline's budget; a stage's is its name


@dataclass(frozen=True)
class Limit:
    cost_usd: float | None = None
    tokens: int | None = None
    on_exceed: str = "halt"  # halt | continue | approval
    forecast: bool = True
    approvers: tuple[str, ...] = ()

    @classmethod
    def of(cls, raw: Mapping[str, object] | None) -> Limit | None:
        if not raw:
            return None
        cost, tokens = raw.get("cost_usd"), raw.get("tokens")
        return cls(
            None if cost is None else float(str(cost)),
            None if tokens is None else int(str(tokens)),
            str(raw.get("on_exceed") or "halt"),
            bool(raw.get("forecast", True)),
            tuple(str(a) for a in raw.get("approvers") or ()),  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class Forecast:
    """What one attempt of a stage is expected to use: P95 over its history, or nothing known."""

    cost_usd: float | None
    tokens: int | None
    samples: int
    note: str  # e.g. "P95 of 14 attempts of build × sonnet", or why there is no forecast


@dataclass
class Spend:
    cost_usd: float = 0.0
    tokens: int = 0

    def add(self, outputs: Mapping[str, str]) -> bool:
        """Add an attempt's reported usage; whether it reported any."""
        cost = _number(outputs.get("cost_usd"))
        tokens = _number(outputs.get("input_tokens")) + _number(outputs.get("output_tokens"))
        self.cost_usd += cost
        self.tokens += int(tokens)
        return bool(cost or tokens)


def _number(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def money(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


class BudgetApprovals(Protocol):
    """Where a request to go over a budget opens and is decided (the store's approvals, in practice)."""

    async def open(self, stage: StageSpec, message: str) -> tuple[str, str]:
        """Open a request showing ``message`` (the forecast): (request id, what to type)."""
        ...

    async def wait(self, request_id: str) -> tuple[bool, str]:
        """(approved, who decided or why not)."""
        ...


ForecastFn = Callable[[StageSpec, str | None], Forecast]


class BudgetGuard:
    def __init__(
        self,
        spec: PipelineSpec,
        forecast: ForecastFn,
        ask: BudgetApprovals | None,
        previous: Mapping[str, StageState],
        clock: Callable[[], float],
    ) -> None:
        self.limits: dict[str, Limit] = {}
        run_limit = Limit.of(spec.budget)
        if run_limit is not None:
            self.limits[RUN] = run_limit
        for s in spec.stages:
            limit = Limit.of(s.budget)
            if limit is not None:
                self.limits[s.name] = limit
        self.forecast_fn = forecast
        self.ask = ask
        self.clock = clock
        self.spent: dict[str, Spend] = {RUN: Spend()}
        self.approved: set[str] = set()
        self.warned: set[str] = set()
        self.stop: str | None = None  # set when a halt applies: the run stops
        for name, stage in previous.items():  # a resumed run: what its finished stages used
            self.spent[RUN].add(stage.outputs)
            self.spent.setdefault(name, Spend()).add(stage.outputs)

    def applies(self, stage: str) -> bool:
        return RUN in self.limits or stage in self.limits

    def _scopes(self, stage: str) -> list[str]:
        return [s for s in (RUN, stage) if s in self.limits]

    def _check(
        self, sink: EventSink, run_id: str, spec: StageSpec, forecast: Forecast | None
    ) -> list[tuple[str, Limit, str]]:
        """Emit one BudgetChecked per scope; (scope, limit, message) of those exceeded."""
        out: list[tuple[str, Limit, str]] = []
        for scope in self._scopes(spec.name):
            limit = self.limits[scope]
            spent = self.spent.setdefault(scope, Spend())
            cost = spent.cost_usd + (forecast.cost_usd or 0 if forecast else 0)
            tokens = spent.tokens + (forecast.tokens or 0 if forecast else 0)
            over = []
            if limit.cost_usd is not None and cost > limit.cost_usd:
                over.append(f"cost {money(cost)} > {money(limit.cost_usd)}")
            if limit.tokens is not None and tokens > limit.tokens:
                over.append(f"tokens {tokens:,} > {limit.tokens:,}")
            label = "run budget" if scope == RUN else f"stage {scope} budget"
            message = ""
            if over:
                basis = "spent" if forecast is None else f"spent + forecast for {spec.name}"
                message = f"{label} exceeded ({basis}): {', '.join(over)}"
                if forecast is not None:
                    message += f" [forecast {forecast.note}]"
                out.append((scope, limit, message))
            sink.emit(
                BudgetChecked(
                    run_id,
                    self.clock(),
                    scope,
                    spec.name,
                    spent.cost_usd,
                    spent.tokens,
                    limit.cost_usd,
                    limit.tokens,
                    None if forecast is None else forecast.cost_usd,
                    None if forecast is None else forecast.tokens,
                    "" if forecast is None else forecast.note,
                    bool(over),
                    limit.on_exceed if over else "",
                    message,
                )
            )
        return out

    async def before(self, sink: EventSink, run_id: str, spec: StageSpec, model: str | None) -> str | None:
        """Check before an attempt starts; the reason to fail the stage, or None to go on."""
        if self.stop is not None:
            return self.stop
        if not self.applies(spec.name):
            return None
        wanted = any(self.limits[s].forecast for s in self._scopes(spec.name))
        forecast = self.forecast_fn(spec, model) if wanted else None
        exceeded = self._check(sink, run_id, spec, forecast)
        for scope, limit, message in exceeded:
            if limit.on_exceed == "continue" or scope in self.approved:
                continue
            if limit.on_exceed == "approval" and self.ask is not None:
                request_id, hint = await self.ask.open(spec, message)
                sink.emit(StageWaiting(run_id, spec.name, self.clock(), request_id, f"{message}; {hint}"))
                ok, why = await self.ask.wait(request_id)
                if ok:
                    self.approved.add(scope)
                    continue
                return f"budget: {message}; going over was not approved ({why})"
            self.stop = f"budget: {message}"
            return self.stop
        return None

    def observe(self, sink: EventSink, run_id: str, spec: StageSpec, outputs: Mapping[str, str]) -> None:
        """An attempt ended: add what it used and check the limits (a halt stops the run)."""
        if not self.spent[RUN].add(outputs) | self.spent.setdefault(spec.name, Spend()).add(outputs):
            return
        if not self.applies(spec.name):
            return
        for scope, limit, message in self._check(sink, run_id, spec, None):
            if limit.on_exceed == "halt" and scope not in self.approved and self.stop is None:
                self.stop = f"budget: {message}"
