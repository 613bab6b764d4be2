"""Reported pipelines in the store: one transaction per report, carried up job → step → pipeline."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.observe import PipelineType, ReportStatus
from orchestrate.observe import service
from orchestrate.settings import Settings
from orchestrate.store import Store, open_store

T0 = 1_800_000_000.0
HOUR = 3600.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(root=tmp_path, user="alice")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "orchestrate.db") as opened:
        yield opened  # type: ignore[misc]


def ticket(
    settings: Settings, store: Store, title: str = "PROJ-1", sprint: str | None = "12", at: float = T0
) -> str:
    return service.create_pipeline(settings, store, PipelineType.TICKET_WORK, title, sprint=sprint, now=at).id


def test_ticket_work_gets_its_three_steps(settings: Settings, store: Store) -> None:
    p = service.get_pipeline(store, ticket(settings, store))
    assert [s.name for s in p.steps] == ["research", "coding", "wrap-up"]
    assert (p.status, p.created_by, p.sprint, p.finished_at) == (ReportStatus.RUNNING, "alice", "12", None)
    custom = service.create_pipeline(settings, store, PipelineType.CUSTOM, "triage", steps=["a", "b", "a"])
    assert [s.name for s in custom.steps] == ["a", "b"]


def test_a_failed_job_fails_its_step_and_its_pipeline(settings: Settings, store: Store) -> None:
    pid = ticket(settings, store)
    research = service.start_job(settings, store, "research", "read", pipeline=pid, now=T0 + 1)
    service.update_job(store, research.id, ReportStatus.SUCCEEDED, "found it", now=T0 + 61)
    coding = service.start_job(settings, store, "coding", "fix", pipeline=pid, now=T0 + 62)
    p = service.get_pipeline(store, pid)
    assert [s.status.value for s in p.steps] == ["succeeded", "running", "pending"]
    assert p.status is ReportStatus.RUNNING
    assert p.steps[0].duration(T0 + 1000) == 60  # derived from its jobs
    service.update_job(store, coding.id, ReportStatus.FAILED, now=T0 + 70)
    p = service.get_pipeline(store, pid)
    assert [s.status.value for s in p.steps] == ["succeeded", "failed", "pending"]
    assert p.status is ReportStatus.FAILED and p.finished_at is None and p.updated_at == T0 + 70
    job = p.steps[1].jobs[0]
    assert (job.started_at, job.finished_at, job.duration(T0 + 1000)) == (T0 + 62, T0 + 70, 8)


def test_a_job_names_a_new_step_and_it_is_added_last(settings: Settings, store: Store) -> None:
    pid = ticket(settings, store)
    service.start_job(settings, store, "review", "second look", pipeline=pid)
    assert [s.name for s in service.get_pipeline(store, pid).steps][-1] == "review"


def test_finish_aggregates_closes_open_jobs_and_then_refuses_changes(
    settings: Settings, store: Store
) -> None:
    pid = ticket(settings, store)
    done = service.start_job(settings, store, "research", "read", pipeline=pid, now=T0)
    service.update_job(store, done.id, ReportStatus.SUCCEEDED, now=T0 + 5)
    left = service.start_job(settings, store, "coding", "forgotten", pipeline=pid, now=T0 + 6)
    p = service.finish(settings, store, pipeline=pid, now=T0 + 10)
    assert (p.status, p.finished_at, p.duration(T0 + 99)) == (ReportStatus.SUCCEEDED, T0 + 10, 10)
    closed = service.get_pipeline(store, pid).steps[1].jobs[0]
    assert (closed.id, closed.status, closed.finished_at) == (left.id, ReportStatus.CANCELLED, T0 + 10)
    with pytest.raises(UsageError, match="is finished"):
        service.update_job(store, done.id, ReportStatus.FAILED)
    with pytest.raises(UsageError, match="is finished"):
        service.finish(settings, store, pipeline=pid)
    activity = (settings.logs_dir / "activity.md").read_text()
    assert f"“PROJ-1” (sprint 12) succeeded in 10s · 2 jobs · [logs]({pid}/)" in activity


def test_finish_with_a_status_and_without_one_after_a_failure(settings: Settings, store: Store) -> None:
    a, b = ticket(settings, store, "a"), ticket(settings, store, "b")
    job = service.start_job(settings, store, "coding", "x", pipeline=a)
    service.update_job(store, job.id, ReportStatus.FAILED)
    assert service.finish(settings, store, pipeline=a).status is ReportStatus.FAILED
    assert (
        service.finish(settings, store, pipeline=b, status=ReportStatus.CANCELLED).status
        is ReportStatus.CANCELLED
    )
    with pytest.raises(UsageError, match="not running"):
        service.finish(settings, store, pipeline=b, status=ReportStatus.RUNNING)


def test_which_pipeline_when_none_is_named(settings: Settings, store: Store) -> None:
    with pytest.raises(NotFoundError, match="no unfinished reported pipeline"):
        service.start_job(settings, store, "research", "x")
    first = ticket(settings, store)
    assert service.start_job(settings, store, "research", "x").pipeline_id == first
    second = ticket(settings, store)
    with pytest.raises(UsageError, match="2 reported pipelines are unfinished") as caught:
        service.start_job(settings, store, "research", "x")
    assert "ORCHESTRATE_REPORT_PIPELINE" in str(caught.value.hint)
    exported = service.Where(pipeline=second)
    assert service.start_job(settings, store, "research", "x", where=exported).pipeline_id == second
    assert service.start_job(settings, store, "research", "x", pipeline=first[:12]).pipeline_id == first


def test_inside_an_executed_stage_the_first_job_creates_its_pipeline(
    settings: Settings, store: Store
) -> None:
    ticket(settings, store)  # unrelated, and unfinished: not picked inside the stage
    where = service.Where(run_id="01run", stage="implement", run_pipeline="agents")
    job = service.start_job(settings, store, "coding", "edit", where=where)
    p = service.get_pipeline(store, job.pipeline_id)
    assert (p.type, p.run_id, p.stage, p.title) == (
        PipelineType.CUSTOM,
        "01run",
        "implement",
        "agents implement (run 01run)",
    )
    again = service.start_job(settings, store, "coding", "test", where=where)
    assert again.pipeline_id == p.id
    assert service.finish(settings, store, where=where).id == p.id


def test_list_filters_pages_and_stale(settings: Settings, store: Store) -> None:
    old = ticket(settings, store, "old", sprint="11", at=T0)
    busy = ticket(settings, store, "busy", sprint="12", at=T0 + 1)
    done = service.create_pipeline(
        settings, store, PipelineType.SPRINT_CLOSE, "close 11", sprint="11", now=T0 + 2
    )
    service.finish(settings, store, pipeline=done.id, now=T0 + 3)
    service.start_job(settings, store, "coding", "work", pipeline=busy, now=T0 + 5 * HOUR)
    now = T0 + 7 * HOUR
    page = service.list_pipelines(settings, store, now=now)
    assert [p.id for p in page.pipelines] == [done.id, busy, old] and page.total == 3
    assert [p.stale(now, page.stale_after) for p in page.pipelines] == [False, False, True]
    stale = service.list_pipelines(settings, store, stale=True, now=now)
    assert [p.id for p in stale.pipelines] == [old]
    assert service.list_pipelines(settings, store, type=PipelineType.SPRINT_CLOSE).pipelines[0].id == done.id
    assert service.list_pipelines(settings, store, status=ReportStatus.SUCCEEDED).total == 1
    assert [p.id for p in service.list_pipelines(settings, store, sprint="11").pipelines] == [done.id, old]
    first = service.list_pipelines(settings, store, limit=2)
    second = service.list_pipelines(settings, store, limit=2, offset=first.next_offset or 0)
    assert (first.next_offset, second.next_offset, [p.id for p in second.pipelines]) == (2, None, [old])
    strict = Settings(root=settings.root, config={"stale_after": "8h"})
    assert service.list_pipelines(strict, store, stale=True, now=now).total == 0


def test_logs_sections_and_clean(settings: Settings, store: Store) -> None:
    pid = ticket(settings, store, sprint="12")
    job = service.start_job(settings, store, "wrap-up", "notes", pipeline=pid, description="what was done")
    assert service.job_log(settings, store, job.id).path is None
    path = service.append_log(settings, store, job.id, "first *section*\n", title="start")
    service.append_log(settings, store, job.id, "second")
    assert path == settings.root / "logs" / pid / "wrap-up" / f"{job.id}.md"
    text = service.job_log(settings, store, job.id).markdown
    assert (
        text.startswith("# notes\n\n_ticket_work “PROJ-1” · step wrap-up · job ") and "what was done" in text
    )
    assert (
        text.count("\n## ") == 2 and " · start\n\nfirst *section*\n" in text and text.endswith("second\n\n")
    )
    open_one = ticket(settings, store, sprint="12")
    assert service.clean(settings, store, "12").cleaned == ()  # not finished yet: kept
    service.finish(settings, store, pipeline=pid)
    dry = service.clean(settings, store, "12", dry_run=True)
    assert (dry.cleaned, dry.files, path.exists()) == ((pid,), 1, True)
    done = service.clean(settings, store, "12")
    assert (done.cleaned, done.files, done.still_open, path.exists()) == ((pid,), 1, (open_one,), False)
    log = service.job_log(settings, store, job.id)
    assert log.markdown == "" and log.cleaned_at is not None
    assert service.clean(settings, store, "12").cleaned == ()  # once


def test_unknown_ids_are_clear(settings: Settings, store: Store) -> None:
    with pytest.raises(NotFoundError, match='unknown reported job "nope"'):
        service.update_job(store, "nope", ReportStatus.SUCCEEDED)
    with pytest.raises(NotFoundError, match='unknown reported pipeline "nope"'):
        service.get_pipeline(store, "nope")


def test_a_store_from_before_these_tables_gets_them_on_first_use(settings: Settings, tmp_path: Path) -> None:
    """Version-1 files made before the reported tables were added lack them: the upgrade adds them."""
    db = tmp_path / "old.db"
    open_store(db).close()
    with sqlite3.connect(db) as conn:
        for table in ("reported_jobs", "reported_steps", "reported_pipelines", "alembic_version"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("PRAGMA user_version = 1")
    with open_store(db) as old:
        assert service.list_pipelines(settings, old).total == 0
        assert service.get_pipeline(old, ticket(settings, old)).title == "PROJ-1"
