"""Reported pipelines rendered as text (a capture console), durations derived from ``now``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from orchestrate.domain.observe import PipelineType, ReportedJob, ReportedPipeline, ReportedStep, ReportStatus
from orchestrate.observe.service import Page
from orchestrate.ui.observe_view import job_log_view, pipeline_table, pipeline_tree

T0 = 1_800_000_000.0
JOB = ReportedJob(
    id="01job00000000000",
    pipeline_id="01pip00000000000",
    step="coding",
    name="Fix the parser",
    status=ReportStatus.RUNNING,
    created_at=T0,
    updated_at=T0,
    started_at=T0,
    log_path="logs/01pip00000000000/coding/01job00000000000.md",
)
PIPELINE = ReportedPipeline(
    id="01pip00000000000",
    type=PipelineType.TICKET_WORK,
    title="PROJ-42",
    status=ReportStatus.RUNNING,
    created_at=T0,
    updated_at=T0,
    sprint="12",
    job_count=1,
    steps=(
        ReportedStep("research", 0, ReportStatus.PENDING),
        ReportedStep("coding", 1, ReportStatus.RUNNING, (JOB,)),
    ),
)


def text(renderable: object) -> str:
    console = Console(width=150, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_tree_shows_steps_jobs_and_ticking_durations() -> None:
    out = text(pipeline_tree(PIPELINE, Path("/ws"), T0 + 75, 6 * 3600))
    assert "ticket_work “PROJ-42”  running" in out and "sprint 12" in out and "open for 1m15s" in out
    assert "○ research  pending  no jobs" in out and "● coding  running  1m15s" in out
    assert "● Fix the parser  running  1m15s  01job00000000000" in out
    assert "log: /ws/logs/01pip00000000000/coding/01job00000000000.md" in out
    later = text(pipeline_tree(PIPELINE, Path("/ws"), T0 + 7 * 3600, 6 * 3600))
    assert "running stale" in later and "7h" in later


def test_the_list_flags_stale_pipelines_and_pages() -> None:
    page = Page([PIPELINE], total=3, limit=1, offset=0, stale_after=3600, now=T0 + 2 * 3600)
    out = text(pipeline_table(page))
    assert "running stale" in out and "PROJ-42" in out and "1-1 of 3; next: --offset 1" in out
    empty = Page([], total=0, limit=20, offset=0, stale_after=3600, now=T0)
    assert "no reported pipelines" in text(pipeline_table(empty))


def test_a_job_with_and_without_a_log() -> None:
    assert "no log yet" in text(job_log_view(JOB, None, "", None))
    assert "## heading" in text(job_log_view(JOB, Path("/x.md"), "## heading\n", None))
    assert "deleted by `report clean`" in text(job_log_view(JOB, Path("/x.md"), "", T0))
