"""JSON shapes the CLI's ``--json`` and the API share: a listed pipeline, a reported one, an approval.

One definition each, so ``pipeline list --json`` and ``GET /api/pipelines`` (and
``approval show --json`` and ``GET /api/approvals/{id}``) cannot drift apart.
"""

from __future__ import annotations

from typing import Any


def listed_json(row: Any, seen: Any = None, registered: bool = True) -> dict[str, Any]:
    """One ``registry.Listed`` row, as ``pipeline list --json`` prints it.

    ``seen`` (``freshness.Overview``): adds the pipeline's active runs and which are stale.
    ``registered`` False: the file is valid but its text is not a stored version yet
    (``version`` is then None; the next run or edit registers it).
    """
    info = row.info
    last = info.last_run if info else None
    stale = seen.stale_runs.get(row.name, {}) if seen is not None else {}
    data: dict[str, Any] = {
        "kind": "executed",
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
            "stale": last.id in stale,
        }
        if last
        else None,
        "runs": {k.value: v for k, v in info.counts.items()} if info else {},
        "success_rate": info.success_rate if info else None,
        "error": row.error,
        "registered": registered,
    }
    if seen is not None:
        data["active_runs"] = [
            {"id": r.id, "status": r.status.value, "stale": r.id in stale, "stale_reason": stale.get(r.id)}
            for r in seen.active.get(row.name, ())
        ]
    return data


def reported_listed_json(p: Any, seen: Any) -> dict[str, Any]:
    """An unfinished reported pipeline as a row of ``pipeline list --json`` (kind ``reported``)."""
    return {
        "kind": "reported",
        "id": p.id,
        "name": p.type.value,
        "title": p.title,
        "sprint": p.sprint,
        "status": p.status.value,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "duration_seconds": p.duration(seen.now),
        "stale": seen.reported_stale(p),
        "run_id": p.run_id,
        "stage": p.stage,
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
