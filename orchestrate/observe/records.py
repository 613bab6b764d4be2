"""The JSON shapes of reported pipelines: ``report … --json`` prints them, the MCP tools return them.

Durations are derived here from the timestamps (finished - started, or now - started
while running); ``stale`` is judged here at read time. Log paths are absolute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrate.domain.observe import Page, ReportedJob, ReportedPipeline, ReportedStep
from orchestrate.observe.service import Cleaned, JobLog


def job_json(job: ReportedJob, root: Path, now: float) -> dict[str, Any]:
    return {
        "id": job.id,
        "pipeline_id": job.pipeline_id,
        "step": job.step,
        "name": job.name,
        "description": job.description,
        "status": job.status.value,
        "summary": job.summary,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "updated_at": job.updated_at,
        "duration_seconds": job.duration(now),
        "log_path": str(root / job.log_path) if job.log_path else None,
    }


def step_json(step: ReportedStep, root: Path, now: float) -> dict[str, Any]:
    return {
        "name": step.name,
        "status": step.status.value,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration_seconds": step.duration(now),
        "jobs": [job_json(j, root, now) for j in step.jobs],
    }


def pipeline_json(
    p: ReportedPipeline, root: Path, now: float, stale_after: float, *, tree: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": p.id,
        "kind": "reported",
        "type": p.type.value,
        "title": p.title,
        "sprint": p.sprint,
        "status": p.status.value,
        "stale": p.stale(now, stale_after),
        "created_at": p.created_at,
        "started_at": p.created_at,
        "updated_at": p.updated_at,
        "finished_at": p.finished_at,
        "duration_seconds": p.duration(now),
        "summary": p.summary,
        "created_by": p.created_by,
        "run_id": p.run_id,
        "stage": p.stage,
        "job_count": p.job_count,
        "logs_dir": str(root / "logs" / p.id),
        "logs_cleaned_at": p.logs_cleaned_at,
    }
    if tree:
        data["steps"] = [step_json(s, root, now) for s in p.steps]
    return data


def page_json(page: Page, root: Path) -> dict[str, Any]:
    return {
        "pipelines": [pipeline_json(p, root, page.now, page.stale_after, tree=False) for p in page.pipelines],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": page.next_offset,
    }


def job_log_json(log: JobLog) -> dict[str, Any]:
    return {
        "job_id": log.job.id,
        "pipeline_id": log.job.pipeline_id,
        "step": log.job.step,
        "name": log.job.name,
        "status": log.job.status.value,
        "log_path": str(log.path) if log.path else None,
        "markdown": log.markdown,
        "cleaned_at": log.cleaned_at,
    }


def cleaned_json(c: Cleaned) -> dict[str, Any]:
    return {
        "sprint": c.sprint,
        "cleaned": list(c.cleaned),
        "files": c.files,
        "still_open": list(c.still_open),
        "dry_run": c.dry_run,
    }
