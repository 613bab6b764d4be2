"""Cron schedules without a daemon: slots, catchup, `schedule list|tick|install` (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrate.spec import cron
from tests.cli.helpers import invoke, rows

JAN1 = 1893456000.0  # 2030-01-01T00:00:00Z


def test_due_slots_walk_back_from_now_and_honour_the_zone() -> None:
    assert cron.due("*/5 * * * *", "UTC", JAN1, JAN1 + 11 * 60) == [JAN1 + 300, JAN1 + 600]
    assert cron.due("*/5 * * * *", "UTC", JAN1, JAN1 + 11 * 60, limit=1) == [JAN1 + 600]
    assert cron.due("*/5 * * * *", "UTC", JAN1 + 600, JAN1 + 600) == []  # a fired slot is not due again
    # 06:00 in Paris is 05:00 UTC in winter.
    assert cron.next_times("0 6 * * *", "Europe/Paris", JAN1) == [JAN1 + 5 * 3600]
    assert cron.format_time(JAN1 + 5 * 3600, "Europe/Paris") == "2030-01-01 06:00 CET"


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
    return list(json.loads(result.output))


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
    result = invoke("schedule", "list", "--now", "2030-01-01T00:01:00+00:00", "--count", "2")
    assert result.exit_code == 0, result.output
    assert "every5  */5 * * * * (UTC)" in result.output
    assert "next: 2030-01-01 00:05 UTC, 2030-01-01 00:10 UTC" in result.output
    assert "last fired: never" in result.output
    data = json.loads(invoke("schedule", "list", "--now", str(JAN1 + 60), "--json").output)
    assert data[0]["next"][0] == JAN1 + 300 and data[0]["tz"] == "UTC"


def test_schedule_install_prints_crontab_and_systemd_units(workspace: Path) -> None:
    result = invoke("schedule", "install")
    assert result.exit_code == 0, result.output
    assert "* * * * * " in result.output and f"--workspace {workspace} schedule tick" in result.output
    assert "OnCalendar=*-*-* *:*:00" in result.output and "[Install]" in result.output
    service = invoke("schedule", "install", "--worker")
    assert f"--workspace {workspace} worker" in service.output and "KillSignal=SIGTERM" in service.output
    bad = invoke("schedule", "install", "--every", "every minute")
    assert bad.exit_code == 2 and "--every:" in bad.output


def test_a_bad_now_is_a_one_line_error(workspace: Path) -> None:
    result = invoke("schedule", "tick", "--now", "tomorrow")
    assert result.exit_code == 2
    assert "--now: 'tomorrow' is not a time" in result.output and "Traceback" not in result.output
