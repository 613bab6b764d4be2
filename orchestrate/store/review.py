"""Goals, review reads and review actions (DESIGN §8), over plain sqlite3 with ``sql.py``'s statements.

The review reads return plain rows (tuples) of recent history; ``orchestrate.review``
judges them. Scheduling an action for a finding is one write transaction: look for a
claim of the same fingerprint still cooling down and, if there is none, insert the
action row, so two processes reviewing at once cannot both schedule it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.review import ActionStatus, FindingKind, Goal, GoalMetric, LinkKind, ReviewAction
from orchestrate.domain.status import RunStatus
from orchestrate.store import sql
from orchestrate.store.db import Database, transact

T = TypeVar("T")
Row = tuple[Any, ...]

_GOALS_HINT = "orchestrate goal list shows the goals"


class ReviewStore:
    """Goals and review actions of one store; each method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _transact(self, write: bool, body: Callable[[sqlite3.Connection], T]) -> T:
        return transact(self._db, write, body)

    # -- goals ----------------------------------------------------------------------------

    def add_goal(self, goal: Goal) -> None:
        def body(conn: sqlite3.Connection) -> None:
            if conn.execute(sql.GOAL_EXISTS, (goal.name,)).fetchone() is not None:
                raise UsageError(
                    f'goal "{goal.name}" already exists',
                    hint=f"orchestrate goal show {goal.name}; or goal remove {goal.name} first",
                )
            conn.execute(
                sql.INSERT_GOAL,
                (goal.name, goal.metric.value, goal.target, goal.created_at, goal.since, goal.deadline,
                 goal.created_by),
            )  # fmt: skip
            for kind, value in goal.links:
                conn.execute(sql.INSERT_GOAL_LINK, (goal.name, kind.value, value, goal.created_at))

        self._transact(True, body)

    def goals(self) -> list[Goal]:
        def body(conn: sqlite3.Connection) -> list[Goal]:
            links: dict[str, list[tuple[LinkKind, str]]] = {}
            for goal, kind, value in conn.execute(sql.SELECT_GOAL_LINKS):
                links.setdefault(goal, []).append((LinkKind(kind), value))
            return [
                Goal(
                    name=name,
                    metric=GoalMetric(metric),
                    target=target,
                    created_at=created,
                    since=since,
                    deadline=deadline,
                    created_by=by,
                    links=tuple(links.get(name, ())),
                )
                for name, metric, target, created, since, deadline, by in conn.execute(sql.SELECT_GOALS)
            ]

        return self._transact(False, body)

    def goal(self, name: str) -> Goal:
        for goal in self.goals():
            if goal.name == name:
                return goal
        raise NotFoundError(f'unknown goal "{name}"', hint=_GOALS_HINT)

    def link_goal(self, name: str, links: Sequence[tuple[LinkKind, str]], at: float, remove: bool) -> None:
        def body(conn: sqlite3.Connection) -> None:
            if conn.execute(sql.GOAL_EXISTS, (name,)).fetchone() is None:
                raise NotFoundError(f'unknown goal "{name}"', hint=_GOALS_HINT)
            for kind, value in links:
                if remove:
                    conn.execute(sql.DELETE_GOAL_LINK, (name, kind.value, value))
                else:
                    conn.execute(sql.INSERT_GOAL_LINK, (name, kind.value, value, at))

        self._transact(True, body)

    def remove_goal(self, name: str) -> None:
        def body(conn: sqlite3.Connection) -> None:
            conn.execute(sql.DELETE_GOAL_LINKS, (name,))
            if conn.execute(sql.DELETE_GOAL, (name,)).rowcount == 0:
                raise NotFoundError(f'unknown goal "{name}"', hint=_GOALS_HINT)

        self._transact(True, body)

    def finished_runs(self, start: float, end: float) -> list[Row]:
        """(id, pipeline, status, started_at, finished_at) of runs that succeeded or failed in [start, end)."""
        params = (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value, start, end)
        return self._transact(False, lambda conn: conn.execute(sql.GOAL_RUNS, params).fetchall())

    # -- review reads ---------------------------------------------------------------------

    def active_runs(self) -> list[Row]:
        """(id, pipeline, status, variables JSON, created_at, pid, host, heartbeat_at, last event at)
        of runs pending, running, waiting for approval or queued for the worker."""
        params = (
            RunStatus.PENDING.value,
            RunStatus.RUNNING.value,
            RunStatus.WAITING_APPROVAL.value,
            RunStatus.QUEUED.value,
        )
        return self._transact(False, lambda conn: conn.execute(sql.REVIEW_ACTIVE_RUNS, params).fetchall())

    def recent_stages(self, since: float, runs: int) -> list[Row]:
        """(pipeline, run id, stage, status) for each pipeline's newest ``runs`` finished runs."""
        params = (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value, since, runs)
        return self._transact(False, lambda conn: conn.execute(sql.REVIEW_RECENT_STAGES, params).fetchall())

    def recent_attempts(self, since: float, statuses: Sequence[str], per_stage: int) -> list[Row]:
        """(pipeline, stage, run id, status, duration) of each stage's newest attempts (task metrics)."""
        wanted = (list(statuses) * 3)[:3]
        params = (since, *wanted, per_stage)
        return self._transact(False, lambda conn: conn.execute(sql.REVIEW_RECENT_ATTEMPTS, params).fetchall())

    def run_costs(self, since: float) -> list[Row]:
        """(run id, pipeline, cost) of runs that reported a cost, by pipeline, newest first."""
        return self._transact(False, lambda conn: conn.execute(sql.REVIEW_RUN_COSTS, (since,)).fetchall())

    def decision_times(self, since: float, statuses: Sequence[str]) -> list[Row]:
        """(pipeline, seconds from request to decision) of decided approval requests."""
        params = (*(list(statuses) * 3)[:3], since)
        return self._transact(False, lambda conn: conn.execute(sql.REVIEW_DECISION_TIMES, params).fetchall())

    def pending_approvals(self, status: str) -> list[Row]:
        """(request id, run id, stage, pipeline, created_at) of requests in ``status``."""
        return self._transact(
            False, lambda conn: conn.execute(sql.REVIEW_PENDING_APPROVALS, (status,)).fetchall()
        )

    # -- actions --------------------------------------------------------------------------

    def claim(
        self,
        fingerprint: str,
        kind: FindingKind,
        subject: str,
        pipeline: str,
        finding: dict[str, Any],
        now: float,
        cooldown: float,
        by: str | None,
    ) -> ReviewAction | tuple[float, float]:
        """The new action row, or (claimed at, cooling until) of the claim that holds the fingerprint."""

        def body(conn: sqlite3.Connection) -> ReviewAction | tuple[float, float]:
            held = conn.execute(sql.REVIEW_ACTION_COOLING, (fingerprint, now)).fetchone()
            if held is not None:
                return (float(held[1]), float(held[2]))
            cur = conn.execute(
                sql.INSERT_REVIEW_ACTION,
                (fingerprint, kind.value, subject, pipeline, ActionStatus.SCHEDULED.value, now, now + cooldown,
                 by, json.dumps(finding)),
            )  # fmt: skip
            assert cur.lastrowid is not None
            return _action(conn.execute(sql.SELECT_REVIEW_ACTION, (cur.lastrowid,)).fetchone())

        return self._transact(True, body)

    def finish_action(
        self,
        action_id: int,
        status: ActionStatus,
        run_id: str | None,
        event_id: str | None,
        error: str | None,
    ) -> ReviewAction:
        def body(conn: sqlite3.Connection) -> ReviewAction:
            conn.execute(sql.SET_REVIEW_ACTION_RESULT, (status.value, run_id, event_id, error, action_id))
            return _action(conn.execute(sql.SELECT_REVIEW_ACTION, (action_id,)).fetchone())

        return self._transact(True, body)

    def actions(self, limit: int) -> list[ReviewAction]:
        return self._transact(
            False, lambda conn: [_action(r) for r in conn.execute(sql.SELECT_REVIEW_ACTIONS, (limit,))]
        )


def _action(row: Row) -> ReviewAction:
    aid, fp, kind, subject, pipeline, status, created, until, run_id, event_id, by, error, finding = row
    return ReviewAction(
        id=int(aid),
        fingerprint=fp,
        kind=FindingKind(kind),
        subject=subject,
        pipeline=pipeline,
        status=ActionStatus(status),
        created_at=created,
        cooldown_until=until,
        run_id=run_id,
        event_id=event_id,
        by=by,
        error=error,
        finding=json.loads(finding),
    )
