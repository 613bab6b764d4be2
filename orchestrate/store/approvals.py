"""Approval requests and their append-only audit trail, over plain sqlite3 like the run path."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from orchestrate.domain.approvals import ApprovalRequest, AuditEntry, OnTimeout, RequestStatus
from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.store import sql

_HINT = "orchestrate approval list shows the requests"


def request_from(row: Any) -> ApprovalRequest:
    (rid, run, stage, iteration, status, approvers, eligible, quorum, deadline, on_timeout, escalate_to,
     escalated, prevent, started_by, evidence, rewind_to, max_iter, created, decided_at, decided_by, reason,
     pipeline) = row  # fmt: skip
    return ApprovalRequest(
        id=rid,
        run_id=run,
        stage=stage,
        iteration=iteration,
        status=RequestStatus(status),
        approvers=tuple(json.loads(approvers)),
        eligible=tuple(json.loads(eligible)),
        quorum=quorum,
        created_at=created,
        deadline=deadline,
        on_timeout=OnTimeout(on_timeout),
        escalate_to=tuple(json.loads(escalate_to)),
        escalated=bool(escalated),
        prevent_self_approval=bool(prevent),
        started_by=started_by,
        evidence=json.loads(evidence) if evidence else None,
        rewind_to=rewind_to,
        max_iterations=max_iter,
        decided_at=decided_at,
        decided_by=decided_by,
        reason=reason,
        pipeline=pipeline,
    )


def insert(conn: sqlite3.Connection, r: ApprovalRequest) -> None:
    conn.execute(
        sql.INSERT_APPROVAL_REQUEST,
        (
            r.id,
            r.run_id,
            r.stage,
            r.iteration,
            r.status.value,
            json.dumps(list(r.approvers)),
            json.dumps(list(r.eligible)),
            r.quorum,
            r.deadline,
            r.on_timeout.value,
            json.dumps(list(r.escalate_to)),
            bool(r.escalated),
            bool(r.prevent_self_approval),
            r.started_by,
            json.dumps(dict(r.evidence)) if r.evidence is not None else None,
            r.rewind_to,
            r.max_iterations,
            r.created_at,
        ),
    )


def append(conn: sqlite3.Connection, request_id: str, entry: AuditEntry) -> None:
    conn.execute(
        sql.INSERT_APPROVAL_AUDIT,
        (
            request_id,
            entry.at,
            entry.kind,
            entry.user,
            entry.os_user,
            entry.to_user,
            entry.comment,
            json.dumps(dict(entry.data)),
        ),
    )


def get(conn: sqlite3.Connection, request_id: str) -> ApprovalRequest:
    row = conn.execute(sql.SELECT_APPROVAL_REQUEST, (request_id,)).fetchone()
    if row is None:
        raise NotFoundError(f'unknown approval request "{request_id}"', hint=_HINT)
    return request_from(row)


def audit(conn: sqlite3.Connection, request_id: str) -> list[AuditEntry]:
    return [
        AuditEntry(at, kind, user, os_user, to_user, comment, json.loads(data))
        for at, kind, user, os_user, to_user, comment, data in conn.execute(
            sql.SELECT_APPROVAL_AUDIT, (request_id,)
        )
    ]


def resolve(conn: sqlite3.Connection, prefix: str) -> str:
    prefix = prefix.strip().lower()
    if not prefix:
        raise UsageError("empty approval request id", hint=_HINT)
    ids = [r for (r,) in conn.execute(sql.SELECT_APPROVAL_IDS_IN_RANGE, (prefix, prefix + "\U0010ffff", 6))]
    if not ids:
        raise NotFoundError(f'unknown approval request "{prefix}"', hint=_HINT)
    if len(ids) > 1 and prefix not in ids:
        raise UsageError(
            f'approval id "{prefix}" is ambiguous: it matches {", ".join(ids[:5])}', hint="type more of it"
        )
    return prefix if prefix in ids else ids[0]


# What a decision step returns: audit rows to append, and the new status (with who and why) or None.
Step = tuple[Sequence[AuditEntry], tuple[RequestStatus, str | None, str | None] | None]


def transact(
    conn: sqlite3.Connection,
    request_id: str,
    at: float,
    step: Callable[[ApprovalRequest, list[AuditEntry]], Step],
) -> ApprovalRequest:
    """Run ``step`` on the current request and audit inside the caller's write transaction."""
    request = get(conn, request_id)
    entries, decision = step(request, audit(conn, request_id))
    for entry in entries:
        append(conn, request_id, entry)
    if decision is not None:
        status, by, reason = decision
        conn.execute(sql.DECIDE_APPROVAL, (status.value, at, by, reason, request_id))
    return get(conn, request_id)
