"""Approvals (DESIGN §4): opening requests for a run, deciding them from any terminal.

The run process opens a request when a gated stage is ready and polls the store
for its decision (a vote from another terminal lands within a second); it also
enforces the deadline. ``approval list`` enforces deadlines too, for runs whose
process is gone. Every request, vote, delegation, refusal and timeout is an
audit row; nothing in here updates or deletes one.
"""

from __future__ import annotations

import getpass
import hashlib
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrate.domain.approvals import (
    ApprovalRequest,
    AuditEntry,
    GateDecision,
    GateOutcome,
    OnTimeout,
    RequestStatus,
    delegation_refusal,
    expand,
    outcome,
    refusal,
)
from orchestrate.domain.errors import UsageError, WorkspaceError
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.state import RunState
from orchestrate.engine.config import format_seconds
from orchestrate.graph import Dag
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec, StageSpec

if TYPE_CHECKING:
    from orchestrate.store import Store

POLL = 0.2  # seconds between looks at the store while a gate waits


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def evidence_digest(root: Path, specs: Sequence[str]) -> dict[str, str]:
    """sha256 per evidence spec: a gitignore-style glob of files, or ``git:REF`` (the commit it names)."""
    from pathspec import GitIgnoreSpec

    out: dict[str, str] = {}
    for spec in specs:
        if spec.startswith("git:"):
            ref = spec.removeprefix("git:") or "HEAD"
            done = subprocess.run(
                ["git", "rev-parse", ref], cwd=root, capture_output=True, text=True, timeout=30
            )
            out[spec] = (
                done.stdout.strip() if done.returncode == 0 else f"unresolved: {done.stderr.strip()[:80]}"
            )
            continue
        matcher = GitIgnoreSpec.from_lines([spec])
        digest = hashlib.sha256()
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and matcher.match_file(p.relative_to(root).as_posix())
        )
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        out[spec] = f"{digest.hexdigest()} ({len(files)} files)"
    return out


def _message(kind: str, request: ApprovalRequest, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": request.id,
        "run": request.run_id,
        "pipeline": request.pipeline,
        "stage": request.stage,
        "iteration": request.iteration,
        "approvers": list(request.approvers),
        "quorum": request.quorum,
        "deadline": request.deadline,
        "evidence": dict(request.evidence or {}),
        "approve": f"orchestrate approval approve {request.id}",
        "reject": f'orchestrate approval reject {request.id} --reason "..."',
        **extra,
    }


def _notify(settings: Settings, message: Mapping[str, Any]) -> list[str]:
    """Send to the channels of orchestrate.yaml; failures are returned as lines, never raised."""
    channels = settings.config.get("notify")
    if not channels:
        return []
    try:
        from orchestrate.services.notify import notify, parse_channels

        return [
            f"notify {d.channel}: {d.detail}"
            for d in notify(parse_channels(channels, settings.root), message)
            if not d.ok
        ]
    except Exception as e:  # a broken channel never blocks a run
        return [f"notify: {e}"]


def approver_groups(settings: Settings) -> Mapping[str, Sequence[str]]:
    """``groups:`` of orchestrate.yaml: a mapping of group names to lists of users."""
    groups = settings.config.get("groups") or {}
    if not isinstance(groups, Mapping) or not all(isinstance(v, list) for v in groups.values()):
        raise WorkspaceError(
            "orchestrate.yaml: groups: must map each group name to a list of users",
            hint="e.g. groups: {devops: [bob, carol]}",
        )
    return groups


def check_config(settings: Settings, spec: PipelineSpec) -> None:
    """Before a run with gates starts: its groups and notify channels parse (one-line errors)."""
    if not any(s.requires_approval for s in spec.stages):
        return
    approver_groups(settings)
    if settings.config.get("notify"):
        from orchestrate.services.notify import parse_channels

        parse_channels(settings.config["notify"], settings.root)


class StoreGate:
    """The engine's ApprovalGate, backed by the store."""

    def __init__(self, settings: Settings, store: Store, run: RunState, *, wait: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.run = run
        self.wait_enabled = wait
        self.stages: dict[str, StageSpec] = {}
        self.notes: list[str] = []

    async def open(self, stage: StageSpec, iteration: int) -> tuple[str, str]:
        self.stages[stage.name] = stage
        for existing in reversed(self.store.stage_approvals(self.run.run_id, stage.name)):
            if existing.iteration == iteration and existing.status in (
                RequestStatus.PENDING,
                RequestStatus.APPROVED,
            ):
                return existing.id, hint(existing)
        request = self._new_request(stage, iteration)
        return request.id, hint(request)

    def _new_request(self, stage: StageSpec, iteration: int) -> ApprovalRequest:
        approval = stage.approval or {}
        groups = approver_groups(self.settings)
        now = time.time()
        timeout = approval.get("timeout")
        evidence = approval.get("evidence")
        request = ApprovalRequest(
            id=new_run_id(now),
            run_id=self.run.run_id,
            stage=stage.name,
            iteration=iteration,
            status=RequestStatus.PENDING,
            approvers=tuple(stage.approvers),
            eligible=expand(stage.approvers, groups),
            quorum=int(approval.get("quorum", 1)),
            created_at=now,
            deadline=now + float(timeout) if timeout else None,
            on_timeout=OnTimeout(approval.get("on_timeout", "reject")),
            escalate_to=tuple(expand(approval.get("escalate_to") or (), groups)),
            prevent_self_approval=bool(approval.get("prevent_self_approval", False)),
            started_by=self.run.started_by,
            evidence=evidence_digest(self.settings.root, evidence) if evidence else None,
            rewind_to=approval.get("rewind_to"),
            max_iterations=approval.get("max_iterations"),
            pipeline=self.run.pipeline,
        )
        self.store.open_approval(request, AuditEntry(now, "requested", data={"iteration": iteration}))
        self.notes += _notify(self.settings, _message("approval_requested", request))
        return request

    async def wait(self, request_id: str) -> GateDecision:
        while True:
            request = self.store.approval(request_id)
            if request.status is RequestStatus.PENDING:
                if request.deadline is not None and time.time() >= request.deadline:
                    expire(self.settings, self.store, request)
                    continue
                if not self.wait_enabled:  # --no-wait: suspend only while undecided
                    return GateDecision(GateOutcome.SUSPENDED)
                await anyio.sleep(POLL)
                continue
            return self._decision(request)

    def _decision(self, request: ApprovalRequest) -> GateDecision:
        if request.status is RequestStatus.APPROVED:
            stage = self.stages.get(request.stage)
            specs = (stage.approval or {}).get("evidence") if stage else None
            if specs and request.evidence is not None:
                now = evidence_digest(self.settings.root, specs)
                if now != dict(request.evidence):
                    changed = ", ".join(k for k in now if now[k] != request.evidence.get(k))
                    self.store.approval_step(
                        request.id,
                        lambda r, a: (
                            [AuditEntry(time.time(), "invalidated", data={"changed": changed})],
                            None,
                        ),
                    )
                    assert stage is not None
                    fresh = self._new_request(stage, request.iteration)
                    return GateDecision(
                        GateOutcome.REOPENED, f"evidence changed: {changed}", fresh.id, hint(fresh)
                    )
            return GateDecision(GateOutcome.APPROVED, f"approved by {request.decided_by}")
        if request.status is RequestStatus.PUSHED_BACK:
            audit = self.store.approval_audit(request.id)
            target = next((e.data.get("rewind_to") for e in reversed(audit) if e.kind == "pushed_back"), None)
            return GateDecision(
                GateOutcome.PUSHED_BACK,
                f"pushed back by {request.decided_by}: {request.reason}",
                rewind_to=target or request.rewind_to or request.stage,
                feedback=request.reason,
                iteration=request.iteration + 1,
            )
        by = (
            f" by {request.decided_by}"
            if request.decided_by and request.status is RequestStatus.REJECTED
            else ""
        )
        return GateDecision(GateOutcome.REJECTED, f"{request.status.value}{by}: {request.reason}")


def hint(request: ApprovalRequest) -> str:
    who = ", ".join(request.approvers) or "anyone"
    return f"waiting for {request.quorum} of {who}: orchestrate approval approve {request.id}"


def expire(settings: Settings, store: Store, request: ApprovalRequest) -> ApprovalRequest:
    """Apply ``on_timeout`` to a pending request past its deadline: reject, approve, or escalate once."""
    took = format_seconds(time.time() - request.created_at)
    if request.on_timeout is OnTimeout.ESCALATE and not request.escalated:
        timeout = (request.deadline or 0) - request.created_at
        store.escalate_approval(
            request.id,
            time.time() + timeout,
            AuditEntry(time.time(), "escalated", data={"to": list(request.escalate_to)}),
        )
        escalated = store.approval(request.id)
        _notify(settings, _message("approval_escalated", escalated, escalate_to=list(request.escalate_to)))
        return escalated
    approve = request.on_timeout is OnTimeout.APPROVE
    status = RequestStatus.APPROVED if approve else RequestStatus.TIMED_OUT
    note = f"no decision within {took}" + ("; approved by on_timeout: approve" if approve else "")

    def step(r: ApprovalRequest, audit: list[AuditEntry]) -> Any:
        if r.status is not RequestStatus.PENDING:
            return [], None
        return [AuditEntry(time.time(), "timed_out", comment=note)], (status, "timeout", note)

    decided = store.approval_step(request.id, step)
    _notify(settings, _message("approval_timed_out", decided, outcome=decided.status.value))
    return decided


def expire_due(settings: Settings, store: Store) -> None:
    """Deadlines of requests whose run process is gone (``approval list`` and ``show`` call this)."""
    now = time.time()
    for request in store.approval_requests(pending_only=True, limit=500):
        if request.deadline is not None and now >= request.deadline:
            expire(settings, store, request)


def _vote(
    store: Store,
    request_id: str,
    user: str,
    action: str,
    kind: str,
    comment: str | None,
    data: Mapping[str, Any] | None = None,
    account: str | None = None,
) -> ApprovalRequest:
    claimed_os = account or os_user()
    refused: list[str] = []

    def step(request: ApprovalRequest, audit: list[AuditEntry]) -> Any:
        now = time.time()
        why = refusal(request, audit, user, action)
        if why:
            refused.append(why)
            return [AuditEntry(now, "refused", user, claimed_os, comment=why, data={"action": action})], None
        entry = AuditEntry(now, kind, user, claimed_os, comment=comment, data=dict(data or {}))
        if kind == "pushed_back":
            return [entry], (RequestStatus.PUSHED_BACK, user, comment)
        decided = outcome(request, [*audit, entry])
        if decided is RequestStatus.APPROVED:
            voters = [e.user for e in [*audit, entry] if e.kind == "approved" and e.user]
            return [entry], (decided, ", ".join(dict.fromkeys(voters)), comment)
        if decided is RequestStatus.REJECTED:
            return [entry], (decided, user, comment)
        return [entry], None

    request = store.approval_step(request_id, step)
    if refused:
        raise UsageError(
            refused[0], hint=f"orchestrate approval show {request.id} lists its approvers and votes"
        )
    return request


# ``account``: who the audit trail says was at the keyboard (os_user); the OS user by
# default, "api:USER" for a vote cast over ``orchestrate serve`` with USER's token.


def approve(
    store: Store, request_id: str, user: str, comment: str | None, *, account: str | None = None
) -> ApprovalRequest:
    return _vote(store, request_id, user, "approve", "approved", comment, account=account)


def reject(
    store: Store, request_id: str, user: str, reason: str, *, account: str | None = None
) -> ApprovalRequest:
    if not reason.strip():
        raise UsageError("--reason is required to reject", hint='e.g. --reason "needs more testing"')
    return _vote(store, request_id, user, "reject", "rejected", reason, account=account)


def push_back(
    store: Store,
    request_id: str,
    user: str,
    reason: str,
    rewind_to: str | None,
    *,
    account: str | None = None,
) -> ApprovalRequest:
    request = store.approval(request_id)
    if request.max_iterations is not None and request.iteration >= request.max_iterations:
        raise UsageError(
            f"request {request.id} is iteration {request.iteration} of at most {request.max_iterations}",
            hint="approve or reject it instead",
        )
    if not reason.strip():
        raise UsageError("--reason is required to push back", hint='e.g. --reason "add tests"')
    from orchestrate.services.execution import run_spec  # execution imports this module

    target = rewind_to or request.rewind_to or request.stage
    before = Dag.from_spec(run_spec(store, store.run_state(request.run_id))).ancestors(request.stage)
    if target != request.stage and target not in before:
        raise UsageError(
            f"--rewind-to {target}: not a stage before {request.stage}",
            hint=f"stages before it: {', '.join(sorted(before)) or 'none'}",
        )
    return _vote(store, request_id, user, "push-back", "pushed_back", reason, {"rewind_to": target}, account)


def delegate(
    store: Store, request_id: str, user: str, to: str, *, account: str | None = None
) -> ApprovalRequest:
    claimed_os = account or os_user()
    refused: list[str] = []

    def step(request: ApprovalRequest, audit: list[AuditEntry]) -> Any:
        why = delegation_refusal(request, audit, user, to)
        now = time.time()
        if why:
            refused.append(why)
            return [AuditEntry(now, "refused", user, claimed_os, to, why, {"action": "delegate"})], None
        return [AuditEntry(now, "delegated", user, claimed_os, to)], None

    request = store.approval_step(request_id, step)
    if refused:
        raise UsageError(
            refused[0], hint=f"orchestrate approval show {request.id} lists its approvers and votes"
        )
    return request


def approval_context(store: Store, run_id: str, stages: Sequence[str]) -> dict[str, str]:
    """${approval.feedback} and ${approval.iteration} for a resumed run: from its latest push-back."""
    latest: ApprovalRequest | None = None
    for name in stages:
        for request in store.stage_approvals(run_id, name):
            if request.status is RequestStatus.PUSHED_BACK and (
                latest is None or request.created_at > latest.created_at
            ):
                latest = request
    if latest is None:
        return {}
    return {"feedback": latest.reason or "", "iteration": str(latest.iteration + 1)}
