"""JSON shapes of the API that have no service-level serializer: the same fields as the CLI's --json."""

from __future__ import annotations

from typing import Any


def listed_json(row: Any, registered: bool = True) -> dict[str, Any]:
    """One ``registry.Listed`` row, as ``pipeline list --json`` prints it.

    ``registered`` False: the file is valid but its text is not a stored version yet
    (``version`` is then None; the next run or edit registers it)."""
    info = row.info
    last = info.last_run if info else None
    return {
        "name": row.name,
        "path": row.path,
        "enabled": info.enabled if info else True,
        "version": row.version,
        "triggers": [t.__dict__ for t in row.spec.triggers] if row.spec else [],
        "last_run": {
            "id": last.id,
            "status": last.status.value,
            "created_at": last.created_at,
            "orphaned": row.last_orphaned,
        }
        if last
        else None,
        "runs": {k.value: v for k, v in info.counts.items()} if info else {},
        "success_rate": info.success_rate if info else None,
        "error": row.error,
        "registered": registered,
    }


def request_json(request: Any, audit: list[Any] | None = None) -> dict[str, Any]:
    """An approval request (with its audit trail), as ``approval show --json`` prints it."""
    data = {
        "id": request.id,
        "run": request.run_id,
        "pipeline": request.pipeline,
        "stage": request.stage,
        "iteration": request.iteration,
        "status": request.status.value,
        "approvers": list(request.approvers),
        "eligible": list(request.eligible),
        "quorum": request.quorum,
        "deadline": request.deadline,
        "on_timeout": request.on_timeout.value,
        "evidence": dict(request.evidence or {}),
        "created_at": request.created_at,
        "decided_at": request.decided_at,
        "decided_by": request.decided_by,
        "reason": request.reason,
    }
    if audit is not None:
        data["audit"] = [
            {
                "at": e.at,
                "kind": e.kind,
                "user": e.user,
                "os_user": e.os_user,
                "to": e.to_user,
                "comment": e.comment,
            }
            for e in audit
        ]
    return data
