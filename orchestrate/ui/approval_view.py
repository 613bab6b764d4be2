"""Approval requests as tables: the list, and one request with its votes and audit trail."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrate.domain.approvals import ApprovalRequest, AuditEntry, Tally
from orchestrate.ui.text import ago, format_duration

STYLE = {
    "pending": "bold magenta",
    "approved": "bold green",
    "rejected": "bold red",
    "timed_out": "yellow",
    "pushed_back": "cyan",
    "invalidated": "dim",
}


def _deadline(request: ApprovalRequest, now: float) -> str:
    if request.deadline is None:
        return "none"
    left = request.deadline - now
    return f"in {format_duration(left)}" if left > 0 else f"{format_duration(-left)} ago"


def request_table(requests: Sequence[ApprovalRequest], now: float) -> RenderableType:
    if not requests:
        return Text("no approval requests")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in (
        "request",
        "status",
        "pipeline",
        "stage",
        "run",
        "approvers",
        "quorum",
        "opened",
        "deadline",
    ):
        table.add_column(column, overflow="fold")
    for r in requests:
        table.add_row(
            r.id,
            Text(r.status.value, style=STYLE.get(r.status.value, "")),
            Text(r.pipeline),
            Text(r.stage + (f" (#{r.iteration})" if r.iteration > 1 else "")),
            r.run_id,
            Text(", ".join(r.approvers)),
            str(r.quorum),
            ago(r.created_at, now),
            _deadline(r, now) if r.status.value == "pending" else "",
        )
    return table


def request_detail(
    request: ApprovalRequest, audit: Sequence[AuditEntry], t: Tally, now: float
) -> RenderableType:
    head = Text()
    head.append(f"request {request.id}  ", style="bold")
    head.append(request.status.value, style=STYLE.get(request.status.value, ""))
    head.append(
        f"\n{request.pipeline} run {request.run_id}, stage {request.stage}, iteration {request.iteration}"
    )
    head.append(f"\napprovers: {', '.join(request.approvers)} (users: {', '.join(request.eligible)})")
    head.append(f"\nquorum: {len(set(t.approvals))} of {request.quorum} approvals")
    if t.approvals:
        head.append(f" ({', '.join(dict.fromkeys(t.approvals))})")
    head.append(f"\ndeadline: {_deadline(request, now)} (on timeout: {request.on_timeout.value})")
    if request.evidence:
        for spec, digest in request.evidence.items():
            head.append(f"\nevidence {spec}: {digest}")
    if request.reason:
        head.append(f"\nreason: {request.reason}")
    if request.status.value == "pending":
        head.append(f"\nwho may still vote: {', '.join(sorted(t.eligible)) or 'nobody'}", style="cyan")
    table = Table(box=None, pad_edge=False, header_style="bold", title="audit trail", title_justify="left")
    for column in ("when", "what", "who", "os user", "detail"):
        table.add_column(column, overflow="fold")
    for e in audit:
        detail = " ".join(x for x in (f"→ {e.to_user}" if e.to_user else "", e.comment or "") if x)
        table.add_row(
            time.strftime("%H:%M:%S", time.localtime(e.at)),
            e.kind,
            Text(e.user or ""),
            Text(e.os_user or ""),
            Text(detail),
        )
    return Group(head, table)
