"""Cron schedules without a daemon: slots, catchup, `schedule list|tick|install` (issue 11)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrate.spec import cron
from tests.cli.helpers import invoke, rows

JAN1 = 1577836800.0  # 2020-01-01T00:00:00Z: a past clock fires for real (a future one only rehearses)


def test_due_slots_walk_back_from_now_and_honour_the_zone() -> None:
    assert cron.due("*/5 * * * *", "UTC", JAN1, JAN1 + 11 * 60) == [JAN1 + 300, JAN1 + 600]
    assert cron.due("*/5 * * * *", "UTC", JAN1, JAN1 + 11 * 60, limit=1) == [JAN1 + 600]
    assert cron.due("*/5 * * * *", "UTC", JAN1 + 600, JAN1 + 600) == []  # a fired slot is not due again
    # 06:00 in Paris is 05:00 UTC in winter.
    assert cron.next_times("0 6 * * *", "Europe/Paris", JAN1) == [JAN1 + 5 * 3600]
    assert cron.format_time(JAN1 + 5 * 3600, "Europe/Paris") == "2020-01-01 06:00 CET"


def test_invalid_cron_and_zone_name_the_line_and_field(pipeline_file, workspace: Path) -> None:
    path = pipeline_file(
        "bad",
        """
        name: bad
        triggers:
          - cron: "61 * * * *"
          - {cron: "@daily", tz: Mars/Base}
          - {event: push, catchup: true}
        stages:
          - {name: a, run: "true"}
        """,
    )
    result = invoke("pipeline", "validate", str(path))
    assert result.exit_code == 2
    assert 'bad.yaml:3:11: triggers[0].cron: "61 * * * *" is not a cron expression' in result.output
    assert 'triggers[1].tz: "Mars/Base" is not a time zone' in result.output
    assert "triggers[2].catchup: catchup applies to cron triggers only" in result.output


CRON = """
name: every5
triggers:
  - {cron: "*/5 * * * *", tz: UTC, catchup: CATCHUP}
stages:
  - {name: a, run: "true"}
"""


def tick(now: float) -> list[dict]:  # type: ignore[type-arg]
    result = invoke("schedule", "tick", "--now", str(now), "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["slots"])


def test_missed_slots_fire_once_without_catchup_and_each_with_it(pipeline_file, workspace: Path) -> None:
    pipeline_file("every5", CRON.replace("CATCHUP", "false"))
    assert tick(JAN1 + 60) == []  # first seen: a new schedule waits for its next slot
    fired = tick(JAN1 + 16 * 60)  # 00:05, 00:10, 00:15 missed: the newest fires once
    assert [(f["slot_at"], f["outcome"]) for f in fired] == [(JAN1 + 900, "started")]
    assert tick(JAN1 + 16 * 60) == []  # the same moment again: already fired
    db = workspace / "orchestrate.db"
    assert rows(db, "SELECT triggered_by FROM runs") == [("cron:*/5 * * * * @UTC",)]
    pipeline_file("every5", CRON.replace("CATCHUP", "true"))
    fired = tick(JAN1 + 31 * 60)  # 00:20, 00:25, 00:30: each one
    assert [f["slot_at"] for f in fired] == [JAN1 + 1200, JAN1 + 1500, JAN1 + 1800]
    assert len(rows(db, "SELECT id FROM runs")) == 4
    assert rows(db, "SELECT COUNT(*) FROM schedule_slots") == [(4,)]


def test_a_disabled_pipeline_does_not_fire(pipeline_file, workspace: Path) -> None:
    pipeline_file("every5", CRON.replace("CATCHUP", "false"))
    assert invoke("pipeline", "disable", "every5").exit_code == 0
    tick(JAN1)
    assert tick(JAN1 + 600) == []
    listed = invoke("schedule", "list", "--now", str(JAN1))
    assert "(disabled)" in listed.output


def test_schedule_list_shows_next_fire_times(pipeline_file, workspace: Path) -> None:
    pipeline_file("every5", CRON.replace("CATCHUP", "false"))
    result = invoke("schedule", "list", "--now", "2020-01-01T00:01:00+00:00", "--count", "2")
    assert result.exit_code == 0, result.output
    assert "every5  */5 * * * * (UTC)" in result.output
    assert "next: 2020-01-01 00:05 UTC, 2020-01-01 00:10 UTC" in result.output
    assert "last fired: never" in result.output
    data = json.loads(invoke("schedule", "list", "--now", str(JAN1 + 60), "--json").output)
    assert data[0]["next"][0] == JAN1 + 300 and data[0]["tz"] == "UTC"


def test_schedule_install_prints_crontab_and_systemd_units(workspace: Path) -> None:
    result = invoke("schedule", "install")
    assert result.exit_code == 0, result.output
    assert "* * * * * " in result.output and f"--workspace {workspace} worker --once" in result.output
    assert "OnCalendar=*-*-* *:*:00" in result.output and "[Install]" in result.output
    service = invoke("schedule", "install", "--worker")
    assert f"--workspace {workspace} worker" in service.output and "KillSignal=SIGTERM" in service.output
    bad = invoke("schedule", "install", "--every", "every minute")
    assert bad.exit_code == 2 and "--every:" in bad.output


def test_a_bad_now_is_a_one_line_error(workspace: Path) -> None:
    result = invoke("schedule", "tick", "--now", "tomorrow")
    assert result.exit_code == 2
    assert "--now: 'tomorrow' is not a time" in result.output and "Traceback" not in result.output


# -- fixes after QA (issue 11) ----------------------------------------------------------------

PARIS = "Europe/Paris"


def paris(*args: int) -> float:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo(PARIS)).timestamp()  # type: ignore[misc]


def test_a_daily_job_fires_once_on_the_day_clocks_go_back() -> None:
    day = (paris(2030, 10, 26, 12), paris(2030, 10, 28, 12))  # 27 October: 02:00-03:00 happens twice
    slots = cron.due("30 2 * * *", PARIS, *day)
    assert [cron.format_time(t, PARIS) for t in slots] == ["2030-10-27 02:30 CEST", "2030-10-28 02:30 CET"]
    assert cron.next_times("30 2 * * *", PARIS, day[0], 2) == slots
    # An interval follows elapsed time: both 02:00s of an hourly job fire.
    hourly = [cron.format_time(t, PARIS) for t in cron.due("0 * * * *", PARIS, *day)]
    assert hourly.count("2030-10-27 02:00 CEST") == 1 and hourly.count("2030-10-27 02:00 CET") == 1


def test_a_daily_job_at_a_time_skipped_in_spring_fires_after_the_gap() -> None:
    day = (paris(2030, 3, 30, 12), paris(2030, 4, 1, 12))  # 31 March: 02:00-03:00 does not exist
    slots = [cron.format_time(t, PARIS) for t in cron.due("30 2 * * *", PARIS, *day)]
    assert slots == ["2030-03-31 03:00 CEST", "2030-04-01 02:30 CEST"]  # once a day still
    hourly = [cron.format_time(t, PARIS) for t in cron.due("0 * * * *", PARIS, *day)]
    assert "2030-03-31 01:00 CET" in hourly and hourly[hourly.index("2030-03-31 01:00 CET") + 1] == (
        "2030-03-31 03:00 CEST"
    )


def test_a_rehearsal_in_the_future_records_nothing_and_leaves_the_real_schedule(
    pipeline_file, workspace: Path
) -> None:
    import time

    pipeline_file("every5", CRON.replace("CATCHUP", "false"))
    future = time.time() + 365 * 86400
    rehearsed = tick(future)
    assert [f["outcome"] for f in rehearsed] == [
        "would fire (rehearsal: the clock is ahead of the real time; nothing recorded)"
    ]
    assert rehearsed[0]["run"] is None
    db = workspace / "orchestrate.db"
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM schedule_slots") == [(0,)]
    # The schedule was first seen at the real time, not in the rehearsal's future.
    (seen,) = rows(db, "SELECT first_seen_at FROM schedules")[0]
    assert seen <= time.time()
    data = json.loads(invoke("schedule", "list", "--json").stdout)
    assert time.time() < data[0]["next"][0] <= time.time() + 300  # the real next slot, within 5 minutes


def test_tick_starts_queued_runs_and_prints_a_run_id_once(pipeline_file, workspace: Path) -> None:
    from tests.worker.helpers import wait_for

    db = workspace / "orchestrate.db"
    pipeline_file("q", "name: q\nstages:\n  - {name: a, run: 'true'}\n")
    queued = invoke("pipeline", "run", "q", "--queue")
    assert queued.exit_code == 0, queued.output
    run_id = queued.stdout.strip()
    result = invoke("schedule", "tick")
    assert result.exit_code == 0, result.output
    assert f"queued run {run_id}: started" in result.stdout
    wait_for(lambda: rows(db, "SELECT status FROM runs WHERE id = ?", run_id) == [("succeeded",)], 15.0)
    assert rows(db, "SELECT reason FROM worker_launches WHERE run_id = ?", run_id) == [("queued",)]
    # A slot whose run waits for the pipeline's slot (concurrency: {} is a limit of 1): one mention.
    pipeline_file(
        "gated",
        """
        name: gated
        concurrency: {}
        triggers:
          - {cron: "*/5 * * * *", tz: UTC}
        stages:
          - {name: ok, requires_approval: true, approvers: [alice]}
        """,
    )
    holding = invoke("pipeline", "run", "gated", "--no-wait")
    assert holding.exit_code == 3, holding.output
    tick(JAN1)
    result = invoke("schedule", "tick", "--now", str(JAN1 + 301))
    assert result.exit_code == 0, result.output
    (slot_run,) = rows(db, "SELECT id FROM runs WHERE triggered_by LIKE 'cron:%'")[0]
    assert result.stdout.count(slot_run) == 1
    assert f"run {slot_run} queued: concurrency limit 1 of gated reached" in result.stdout
    assert rows(db, "SELECT status FROM runs WHERE id = ?", slot_run) == [("queued",)]


def test_list_and_tick_report_invalid_pipeline_files(pipeline_file, workspace: Path) -> None:
    pipeline_file("broken", "name: broken\nstages:\n  - {name: a, run: 'true', timeout: soon}\n")
    for command in ("list", "tick"):
        result = invoke("schedule", command)
        assert result.exit_code == 0, result.output
        assert "invalid definition: pipelines.d/broken.yaml:3:" in result.stderr
        assert "no valid version to schedule" in result.stderr


def test_install_follows_every(workspace: Path) -> None:
    result = invoke("schedule", "install", "--every", "0 * * * *")
    assert result.exit_code == 0, result.output
    assert "minute" not in result.output
    assert "0 * * * * " in result.output and 'one worker pass on "0 * * * *"' in result.output
    assert "OnCalendar=*-*-* *:00:00" in result.output
    weekdays = invoke("schedule", "install", "--every", "30 6 * * 1-5")
    assert "OnCalendar=Mon..Fri *-*-* 06:30:00" in weekdays.output
    both = invoke("schedule", "install", "--every", "0 0 1 * 1")
    assert both.exit_code == 0 and "OnCalendar=" not in both.output
    assert '# no systemd timer: OnCalendar cannot say "0 0 1 * 1"' in both.output


def test_now_zero_or_empty_is_an_error(workspace: Path) -> None:
    for value, message in (("0", "--now: '0' is not a time"), ("", "--now: empty")):
        result = invoke("schedule", "tick", "--now", value)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_a_slot_claimed_by_two_racing_ticks_fires_once(pipeline_file, workspace: Path, monkeypatch) -> None:
    """Two ticks both find the slot due before either claims it: the store lets one claim it."""
    import threading

    from orchestrate.services import registry
    from orchestrate.settings import resolve
    from orchestrate.store import open_store
    from orchestrate.worker import schedules as sched

    pipeline_file("every5", CRON.replace("CATCHUP", "false"))
    tick(JAN1)  # first seen
    both_due = threading.Barrier(2, timeout=10)
    real_due = cron.due

    def due_then_wait(*args, **kwargs):  # type: ignore[no-untyped-def]
        slots = real_due(*args, **kwargs)
        both_due.wait()  # neither claims before both have seen the slot due
        return slots

    monkeypatch.setattr(cron, "due", due_then_wait)
    s = resolve(workspace, {**os.environ, "ORCHESTRATE_HOME": str(workspace)}, workspace)
    found = sched.schedules(registry.sync(s, open_store(s.store_location)))
    results: dict[str, list[sched.Fired]] = {}
    started: list[str] = []

    def one(name: str) -> None:
        store = open_store(s.store_location)
        results[name] = sched.tick(s, store, found, JAN1 + 301, name, lambda run, _why: started.append(run))

    threads = [threading.Thread(target=one, args=(n,)) for n in ("tick A", "tick B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    outcomes = sorted(f.outcome for fired in results.values() for f in fired)
    assert outcomes == ["claimed elsewhere", "started"]
    db = workspace / "orchestrate.db"
    assert len(rows(db, "SELECT id FROM runs WHERE triggered_by LIKE 'cron:%'")) == 1
    assert rows(db, "SELECT COUNT(*) FROM schedule_slots WHERE slot_at = ?", JAN1 + 300) == [(1,)]
    assert len(started) == 1
