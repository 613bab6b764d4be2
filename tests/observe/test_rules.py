"""The reporting rules (domain.observe): propagation, final status, staleness, overdue stages."""

from __future__ import annotations

import pytest

from orchestrate.domain.errors import UsageError
from orchestrate.domain.observe import (
    ReportStatus,
    aggregate,
    final_status,
    is_stale,
    open_pipeline_status,
    overdue,
    p95,
    parse_status,
    parse_type,
)

PENDING, RUNNING, OK, FAILED, CANCELLED = (
    ReportStatus.PENDING,
    ReportStatus.RUNNING,
    ReportStatus.SUCCEEDED,
    ReportStatus.FAILED,
    ReportStatus.CANCELLED,
)


@pytest.mark.parametrize(
    ("jobs", "step"),
    [
        ([], PENDING),
        ([PENDING], PENDING),
        ([RUNNING, OK], RUNNING),
        ([OK, PENDING], RUNNING),  # under way
        ([OK, OK], OK),
        ([OK, CANCELLED], OK),
        ([CANCELLED], CANCELLED),
        ([OK, FAILED, RUNNING], FAILED),  # a failed job fails its step, whatever else runs
    ],
)
def test_a_step_is_the_aggregate_of_its_jobs(jobs: list[ReportStatus], step: ReportStatus) -> None:
    assert aggregate(jobs) is step


def test_an_open_pipeline_runs_until_a_step_fails() -> None:
    assert open_pipeline_status([OK, PENDING, PENDING]) is RUNNING
    assert open_pipeline_status([OK, FAILED, RUNNING]) is FAILED


def test_the_final_status_ignores_steps_that_never_started() -> None:
    assert final_status([OK, OK, PENDING]) is OK  # no wrap-up job: still a success
    assert final_status([OK, FAILED, PENDING]) is FAILED
    assert final_status([PENDING, PENDING]) is OK  # nothing failed
    assert final_status([CANCELLED]) is CANCELLED


def test_status_words_agents_use() -> None:
    assert parse_status("success") is OK and parse_status("Failure") is FAILED
    assert parse_status("succeeded") is OK and parse_status("canceled") is CANCELLED
    with pytest.raises(UsageError, match='unknown status "done"') as caught:
        parse_status("done")
    assert "success, failure" in str(caught.value.hint)
    with pytest.raises(UsageError):
        parse_status("success", allowed=(PENDING, RUNNING))
    assert parse_type("ticket-work").value == "ticket_work"
    with pytest.raises(UsageError, match="unknown pipeline type"):
        parse_type("epic")


def test_stale_means_running_unfinished_and_silent_for_longer_than_the_threshold() -> None:
    hour = 3600.0
    assert is_stale(RUNNING, None, updated_at=0, now=6 * hour + 1, after=6 * hour)
    assert not is_stale(RUNNING, None, updated_at=0, now=6 * hour, after=6 * hour)
    assert not is_stale(FAILED, None, updated_at=0, now=10 * hour, after=6 * hour)
    assert not is_stale(RUNNING, 5.0, updated_at=0, now=10 * hour, after=6 * hour)


def test_overdue_against_the_stages_own_p95() -> None:
    past = [10.0] * 9 + [20.0]
    assert p95(past) == 20.0
    assert overdue(1000, past[:9]) is None  # fewer than 10 past runs: no judgement
    assert overdue(60, past) is None  # 3 × 20 s
    reason = overdue(61, past)
    assert reason is not None and "3 × its P95 of 20s over 10 past runs" in reason
    assert overdue(41, past, k=2) is not None
