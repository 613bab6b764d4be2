"""Experiments and budgets in the store (issue 10): run variants, and the history they read.

Plain sqlite3 like the run path (a run records its variants before it starts).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from orchestrate.domain.status import RunStatus
from orchestrate.store import sql
from orchestrate.store.db import Database, transact

T = TypeVar("T")


@dataclass(frozen=True)
class ExperimentRun:
    """One run of an experiment, with what a report compares."""

    variant: str
    run_id: str
    pipeline: str
    status: RunStatus
    duration: float | None  # seconds, for a finished run that started
    tokens: int | None  # summed over its attempts; None when none reported any
    cost_usd: float | None


@dataclass(frozen=True)
class VariantCount:
    pipeline: str
    experiment: str
    variant: str
    runs: int
    succeeded: int
    last_run_at: float


class Experiments:
    """Each method is one transaction over the store's connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _transact(self, write: bool, body: Callable[[sqlite3.Connection], T]) -> T:
        return transact(self._db, write, body)

    def record(self, run_id: str, assignments: Iterable[tuple[str, str, str]]) -> None:
        """(experiment, variant, assigned_by) rows; an experiment already assigned keeps its variant."""
        now = time.time()
        rows = [(run_id, e, v, by, now) for e, v, by in assignments]
        if rows:
            self._transact(True, lambda conn: conn.executemany(sql.INSERT_RUN_VARIANT, rows))

    def of_run(self, run_id: str) -> dict[str, tuple[str, str]]:
        """experiment → (variant, assigned_by) of one run."""

        def body(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
            return {e: (v, by) for e, v, by in conn.execute(sql.RUN_VARIANTS, (run_id,))}

        return self._transact(False, body)

    def runs(self, experiment: str, pipeline: str | None = None) -> list[ExperimentRun]:
        def body(conn: sqlite3.Connection) -> list[ExperimentRun]:
            usage = {
                run: (tokens if n_tokens else None, cost if n_cost else None)
                for run, tokens, cost, n_tokens, n_cost in conn.execute(
                    sql.EXPERIMENT_RUN_USAGE, (experiment,)
                )
            }
            out = []
            for variant, run_id, name, status, started, finished in conn.execute(
                sql.EXPERIMENT_RUNS, (experiment, pipeline, pipeline)
            ):
                tokens, cost = usage.get(run_id, (None, None))
                duration = finished - started if started is not None and finished is not None else None
                out.append(
                    ExperimentRun(
                        variant,
                        run_id,
                        name,
                        RunStatus(status),
                        duration,
                        None if tokens is None else int(tokens),
                        None if cost is None else float(cost),
                    )
                )
            return out

        return self._transact(False, body)

    def summary(self) -> list[VariantCount]:
        def body(conn: sqlite3.Connection) -> list[VariantCount]:
            return [
                VariantCount(p, e, v, int(n), int(ok or 0), float(last))
                for p, e, v, n, ok, last in conn.execute(sql.EXPERIMENT_SUMMARY, (RunStatus.SUCCEEDED.value,))
            ]

        return self._transact(False, body)

    def stage_usage(
        self, pipeline: str, task_type: str, model: str | None, limit: int = 200
    ) -> list[tuple[float | None, int | None]]:
        """(cost, tokens) of the newest attempts of a stage that reported usage: with ``model`` (the
        configured one, as task metrics record it), or with any model when it is None."""

        def body(conn: sqlite3.Connection) -> list[tuple[float | None, int | None]]:
            rows = conn.execute(sql.STAGE_USAGE_HISTORY, (task_type, model, model, pipeline, limit))
            out: list[tuple[float | None, int | None]] = []
            for cost, tokens_in, tokens_out in rows:
                tokens = (
                    None if tokens_in is None and tokens_out is None else (tokens_in or 0) + (tokens_out or 0)
                )
                out.append((cost, tokens))
            return out

        return self._transact(False, body)

    def budget_events(self, run_id: str) -> list[str]:
        """The JSON payloads of a run's budget checks, oldest first."""
        return self._transact(
            False, lambda conn: [row[0] for row in conn.execute(sql.RUN_BUDGET_EVENTS, (run_id,))]
        )
