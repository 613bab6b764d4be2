"""Agent self-reporting (DESIGN §7): the operations behind ``orchestrate report`` and the MCP tools.

Both adapters call these functions and render what they return (``records`` gives the
JSON shape both print), so the command line and MCP cannot disagree. Every function
takes the store and the settings it needs; where the reporter is (the executed run and
stage, a pipeline id exported for later calls) comes in as a ``Where`` built by the
adapter from the environment.

Which pipeline a report is about, when the call names none: ``ORCHESTRATE_REPORT_PIPELINE``,
else the one unfinished pipeline (of this stage, inside an executed stage). Inside a stage
with none, ``start_job`` creates one for it, so an agent run by a pipeline can report
jobs without any set-up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrate.domain.errors import NotFoundError, UsageError, WorkspaceError
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.observe import (
    DEFAULT_STALE_AFTER,
    DEFAULT_STEPS,
    REPORT_TERMINAL,
    Page,
    PipelineType,
    ReportedJob,
    ReportedPipeline,
    ReportStatus,
    check_name,
    final_status,
)
from orchestrate.observe import logs

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store import Store

PIPELINE_ENV = "ORCHESTRATE_REPORT_PIPELINE"
_CREATE_HINT = 'create one: orchestrate report pipeline create --type ticket_work --title "..."'


@dataclass(frozen=True)
class Where:
    """Where the reporter runs: an executed run's stage, and a pipeline id it exported."""

    run_id: str | None = None
    stage: str | None = None
    run_pipeline: str | None = None  # the executed pipeline's name (ORCHESTRATE_PIPELINE)
    pipeline: str | None = None  # ORCHESTRATE_REPORT_PIPELINE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Where:
        return cls(
            run_id=env.get("ORCHESTRATE_RUN_ID") or None,
            stage=env.get("ORCHESTRATE_STAGE") or None,
            run_pipeline=env.get("ORCHESTRATE_PIPELINE") or None,
            pipeline=env.get(PIPELINE_ENV) or None,
        )


def stale_after(settings: Settings) -> float:
    """``stale_after`` in orchestrate.yaml (a duration: 6h, 90m, or seconds), 6 hours by default."""
    value = settings.config.get("stale_after")
    if value is None:
        return DEFAULT_STALE_AFTER
    from orchestrate.spec.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise WorkspaceError(f"{settings.root / 'orchestrate.yaml'}: stale_after: {e}") from None


# -- writes -------------------------------------------------------------------------------


def create_pipeline(
    settings: Settings,
    store: Store,
    type: PipelineType,
    title: str,
    *,
    sprint: str | None = None,
    steps: Sequence[str] = (),
    where: Where = Where(),
    now: float | None = None,
) -> ReportedPipeline:
    """A running pipeline with its type's steps (ticket_work: research, coding, wrap-up), then ``steps``."""
    now = time.time() if now is None else now
    title = title.strip()
    if not title:
        raise UsageError("a reported pipeline needs a title", hint='e.g. --title "PROJ-42 fix the login"')
    names = [*DEFAULT_STEPS[type], *(check_name("step", s) for s in steps)]
    pipeline = ReportedPipeline(
        id=new_run_id(now),
        type=type,
        title=title,
        status=ReportStatus.RUNNING,
        created_at=now,
        updated_at=now,
        sprint=(sprint or "").strip() or None,
        created_by=settings.user or None,
        run_id=where.run_id,
        stage=where.stage if where.run_id else None,
    )
    return store.reports().create_pipeline(pipeline, names)


def start_job(
    settings: Settings,
    store: Store,
    step: str,
    name: str,
    *,
    pipeline: str | None = None,
    description: str | None = None,
    status: ReportStatus = ReportStatus.RUNNING,
    where: Where = Where(),
    now: float | None = None,
) -> ReportedJob:
    """A job in ``step`` (created when the pipeline has no step of that name), carried up."""
    now = time.time() if now is None else now
    step, name = check_name("step", step), check_name("job", name)
    pipeline_id = resolve_pipeline(settings, store, pipeline, where, create=True, now=now)
    job = ReportedJob(
        id=new_run_id(now),
        pipeline_id=pipeline_id,
        step=step,
        name=name,
        status=status,
        created_at=now,
        updated_at=now,
        description=(description or "").strip() or None,
        started_at=None if status is ReportStatus.PENDING else now,
        finished_at=now if status in REPORT_TERMINAL else None,
    )
    return store.reports().add_job(job)


def update_job(
    store: Store, job: str, status: ReportStatus, summary: str | None = None, now: float | None = None
) -> ReportedJob:
    """New status (and summary) of a job: success or failure closes it; carried up to step and pipeline."""
    now = time.time() if now is None else now
    return store.reports().update_job(job, status, (summary or "").strip() or None, now)


def append_log(
    settings: Settings,
    store: Store,
    job: str,
    markdown: str,
    *,
    title: str | None = None,
    now: float | None = None,
) -> Path:
    """Append one section (timestamp heading, then ``markdown``) to the job's log; its path."""
    now = time.time() if now is None else now
    reports = store.reports()
    found = reports.job(job)
    relative = found.log_path or logs.job_log_path(found)
    path = settings.root / relative
    header = logs.log_header(found, reports.pipeline(found.pipeline_id))
    logs.append_section(path, logs.section(markdown, now, title), header)
    reports.set_job_log(found.id, relative, now)
    return path


def finish(
    settings: Settings,
    store: Store,
    *,
    pipeline: str | None = None,
    status: ReportStatus | None = None,
    summary: str | None = None,
    where: Where = Where(),
    now: float | None = None,
) -> ReportedPipeline:
    """Close the pipeline (open jobs are cancelled); without ``status``, the aggregate of its steps.

    Appends one line to logs/activity.md; a failure to write it is ignored (best effort).
    """
    now = time.time() if now is None else now
    if status is not None and status not in REPORT_TERMINAL:
        raise UsageError(
            f"a pipeline finishes as success, failure or cancelled, not {status.value}",
            hint="leave --status out to take it from the steps",
        )
    pipeline_id = resolve_pipeline(settings, store, pipeline, where, create=False, now=now)
    done = store.reports().finish(pipeline_id, status or final_status, (summary or "").strip() or None, now)
    try:
        logs.append_activity(settings.logs_dir, done, now)
    except OSError:
        pass  # the activity log is a convenience: never fail the finish for it
    return done


@dataclass(frozen=True)
class Cleaned:
    sprint: str
    cleaned: tuple[str, ...]  # pipelines whose logs were deleted
    files: int
    still_open: tuple[str, ...]  # the sprint's unfinished pipelines, left alone
    dry_run: bool = False


def clean(
    settings: Settings, store: Store, sprint: str, *, dry_run: bool = False, now: float | None = None
) -> Cleaned:
    """Delete the job logs of the sprint's finished pipelines, and record that they are gone."""
    now = time.time() if now is None else now
    sprint = sprint.strip()
    if not sprint:
        raise UsageError("clean needs a sprint", hint="e.g. orchestrate report clean --sprint 12")
    reports = store.reports()
    found = reports.sprint_pipelines(sprint)
    finished = [pid for pid, finished_at in found if finished_at is not None]
    files = sum(logs.delete_pipeline_logs(settings.logs_dir, pid, dry_run) for pid in finished)
    if not dry_run:
        reports.mark_logs_cleaned(finished, now)
    still_open = tuple(pid for pid, finished_at in found if finished_at is None)
    return Cleaned(sprint, tuple(finished), files, still_open, dry_run)


# -- reads --------------------------------------------------------------------------------


def list_pipelines(
    settings: Settings,
    store: Store,
    *,
    status: ReportStatus | None = None,
    type: PipelineType | None = None,
    sprint: str | None = None,
    stale: bool = False,
    limit: int = 20,
    offset: int = 0,
    now: float | None = None,
) -> Page:
    """A page of pipelines, newest first; ``stale`` keeps those running without news for ``stale_after``."""
    now = time.time() if now is None else now
    if limit < 1 or offset < 0:
        raise UsageError("limit must be at least 1 and offset at least 0")
    after = stale_after(settings)
    items, total = store.reports().pipelines(
        status=status,
        type=type,
        sprint=sprint,
        stale_before=now - after if stale else None,
        limit=limit,
        offset=offset,
    )
    return Page(items, total, limit, offset, after, now)


def get_pipeline(store: Store, pipeline: str) -> ReportedPipeline:
    return store.reports().pipeline(pipeline)


@dataclass(frozen=True)
class JobLog:
    job: ReportedJob
    path: Path | None  # None: nothing was appended yet
    markdown: str
    cleaned_at: float | None = None  # `report clean` deleted it then


def job_log(settings: Settings, store: Store, job: str) -> JobLog:
    reports = store.reports()
    found = reports.job(job)
    if found.log_path is None:
        return JobLog(found, None, "")
    path = settings.root / found.log_path
    try:
        return JobLog(found, path, path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        cleaned = reports.pipeline(found.pipeline_id).logs_cleaned_at
        if cleaned is not None:
            return JobLog(found, path, "", cleaned)
        raise NotFoundError(f"the log of job {found.id} is gone: {path}") from None


# -- which pipeline -------------------------------------------------------------------------


def resolve_pipeline(
    settings: Settings, store: Store, explicit: str | None, where: Where, *, create: bool, now: float
) -> str:
    """The pipeline a report is about (see the module docstring for the order)."""
    reports = store.reports()
    given = (explicit or "").strip() or where.pipeline
    if given:
        return reports.pipeline(given).id
    in_stage = where.run_id is not None
    candidates = reports.open_pipelines(where.run_id, where.stage)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates and in_stage and create:
        title = f"{where.run_pipeline or 'run'} {where.stage or ''} (run {where.run_id})".replace("  ", " ")
        return create_pipeline(settings, store, PipelineType.CUSTOM, title, where=where, now=now).id
    scope = f" in stage {where.stage} of run {where.run_id}" if in_stage else ""
    if not candidates:
        raise NotFoundError(f"no unfinished reported pipeline{scope}", hint=_CREATE_HINT)
    raise UsageError(
        f"{len(candidates)} reported pipelines are unfinished{scope}: {', '.join(candidates[:5])}",
        hint=f"name one: --pipeline ID, or export {PIPELINE_ENV}=ID",
    )
