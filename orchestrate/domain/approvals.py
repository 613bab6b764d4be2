"""Approval requests and their audit trail, and the rules that decide them (DESIGN §4).

Stdlib only. A request's outcome is a pure function of the request and its audit
rows: eligible users (groups expanded, plus delegates), one vote each, ``quorum``
approvals approve, one rejection rejects. The store only appends audit rows and
records the outcome these rules compute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    PUSHED_BACK = "pushed_back"
    INVALIDATED = "invalidated"  # its evidence changed before the gated stage started


DECIDED = frozenset(set(RequestStatus) - {RequestStatus.PENDING})


class OnTimeout(StrEnum):
    REJECT = "reject"
    APPROVE = "approve"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class AuditEntry:
    at: float
    kind: str  # requested, approved, rejected, delegated, refused, timed_out, escalated, pushed_back, ...
    user: str | None = None
    os_user: str | None = None
    to_user: str | None = None
    comment: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    run_id: str
    stage: str
    iteration: int
    status: RequestStatus
    approvers: tuple[str, ...]  # as written: users and groups
    eligible: tuple[str, ...]  # users
    quorum: int
    created_at: float
    deadline: float | None = None
    on_timeout: OnTimeout = OnTimeout.REJECT
    escalate_to: tuple[str, ...] = ()
    escalated: bool = False
    prevent_self_approval: bool = False
    started_by: str | None = None
    evidence: Mapping[str, str] | None = None
    rewind_to: str | None = None
    max_iterations: int | None = None
    decided_at: float | None = None
    decided_by: str | None = None
    reason: str | None = None
    pipeline: str = ""


def expand(approvers: Iterable[str], groups: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Users named directly, and the members of named groups, once each, in order."""
    users: dict[str, None] = {}
    for name in approvers:
        for user in groups.get(name, [name]):
            users[str(user)] = None
    return tuple(users)


@dataclass(frozen=True)
class Tally:
    approvals: tuple[str, ...]
    rejection: AuditEntry | None
    voted: frozenset[str]
    delegated: Mapping[str, str]  # from → to
    eligible: frozenset[str]  # who may still vote


def tally(request: ApprovalRequest, audit: Sequence[AuditEntry]) -> Tally:
    approvals: list[str] = []
    rejection = None
    voted: set[str] = set()
    delegated: dict[str, str] = {}
    eligible = set(request.eligible)
    for entry in audit:
        if entry.kind == "approved" and entry.user:
            approvals.append(entry.user)
            voted.add(entry.user)
        elif entry.kind == "rejected" and entry.user:
            rejection = rejection or entry
            voted.add(entry.user)
        elif entry.kind == "pushed_back" and entry.user:
            voted.add(entry.user)
        elif entry.kind == "delegated" and entry.user and entry.to_user:
            delegated[entry.user] = entry.to_user
            eligible.add(entry.to_user)
        elif entry.kind == "escalated":
            eligible.update(request.escalate_to)
    eligible -= set(delegated) | voted
    return Tally(tuple(approvals), rejection, frozenset(voted), delegated, frozenset(eligible))


def refusal(request: ApprovalRequest, audit: Sequence[AuditEntry], user: str, action: str) -> str | None:
    """Why ``user`` may not ``action`` (approve, reject, delegate, push-back) this request; None if they may."""
    if request.status is not RequestStatus.PENDING:
        return f"request {request.id} is already {request.status.value}"
    t = tally(request, audit)
    if user in t.voted:
        return f"{user} has already voted on request {request.id}"
    if user in t.delegated:
        return f"{user} delegated their vote to {t.delegated[user]}"
    if user not in t.eligible:
        return (
            f"{user} is not an approver of request {request.id} (approvers: {', '.join(request.approvers)})"
        )
    if action in ("approve", "push-back") and request.prevent_self_approval and user == request.started_by:
        return f"{user} started run {request.run_id} and may not approve it (prevent_self_approval)"
    return None


def delegation_refusal(
    request: ApprovalRequest, audit: Sequence[AuditEntry], user: str, to: str
) -> str | None:
    why = refusal(request, audit, user, "delegate")
    if why:
        return why
    if to == user:
        return f"{user} cannot delegate to themselves"
    t = tally(request, audit)
    if to in t.voted:
        return f"{to} has already voted on request {request.id}"
    # Following the chain from ``to`` must not come back to ``user``: no loops.
    seen, current = {to}, to
    while current in t.delegated:
        current = t.delegated[current]
        if current == user or current in seen:
            return f"delegating to {to} would make a loop back to {user}"
        seen.add(current)
    return None


def outcome(request: ApprovalRequest, audit: Sequence[AuditEntry]) -> RequestStatus:
    """What the votes so far decide (pending until quorum or a rejection)."""
    t = tally(request, audit)
    if t.rejection is not None:
        return RequestStatus.REJECTED
    if len(set(t.approvals)) >= request.quorum:
        return RequestStatus.APPROVED
    return RequestStatus.PENDING


class GateOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"  # also timed out
    PUSHED_BACK = "pushed_back"
    REOPENED = "reopened"  # a new request replaced this one (its evidence changed): wait on it
    SUSPENDED = "suspended"  # --no-wait: leave the gate open and let this process go


@dataclass(frozen=True)
class GateDecision:
    outcome: GateOutcome
    reason: str = ""
    request_id: str | None = None  # the new request, when reopened
    hint: str = ""  # what to type next, when reopened
    rewind_to: str | None = None  # pushed back: the stage to run again from
    feedback: str | None = None  # pushed back: the reviewer's words, as ${approval.feedback}
    iteration: int = 1  # pushed back: the iteration that follows
