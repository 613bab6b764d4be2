"""``orchestrate schedule list|tick|install``: cron triggers without (or beside) the worker."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings

app = typer.Typer(
    help="Cron schedules: next fire times, one scheduling pass, a crontab line.\n\n"
    "Example:\n\n  orchestrate schedule list",
    no_args_is_help=True,
)

Now = Annotated[
    str | None,
    typer.Option(
        "--now", help="Pretend it is this time (ISO 8601 or epoch); default ORCHESTRATE_NOW, else now."
    ),
]


def _now(value: str | None) -> float:
    from orchestrate.worker.config import env_now, parse_now

    return parse_now(value, "--now") or env_now(os.environ) or time.time()


@app.command("list")
@handle_errors
def list_schedules(
    count: Annotated[int, typer.Option("--count", "-c", min=1, help="Next fire times to show.")] = 3,
    now: Now = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every cron trigger in pipelines.d/: its next fire times and the last slot that fired.

    Examples:

      orchestrate schedule list

      orchestrate schedule list --count 5 --json
    """
    from orchestrate.services import registry
    from orchestrate.spec.cron import format_time
    from orchestrate.store import open_store
    from orchestrate.worker.schedules import schedules, upcoming

    s = settings()
    store = open_store(s.store_location)
    at = _now(now)
    rows = upcoming(store, schedules(registry.sync(s, store)), at, count)
    if as_json:
        data = [
            {
                "pipeline": u.schedule.pipeline,
                "cron": u.schedule.expr,
                "tz": u.schedule.trigger.tz,
                "catchup": u.schedule.trigger.catchup,
                "enabled": u.schedule.enabled,
                "next": u.next_at,
                "last_slot": u.last_slot,
            }
            for u in rows
        ]
        typer.echo(json.dumps(data, indent=2))
        return
    if not rows:
        typer.echo('no cron triggers in pipelines.d/ (add one: triggers: [{cron: "0 */6 * * *"}])')
        return
    for u in rows:
        tz = u.schedule.trigger.tz
        state = "" if u.schedule.enabled else "  (disabled)"
        catchup = ", catchup" if u.schedule.trigger.catchup else ""
        typer.echo(f"{u.schedule.pipeline}  {u.schedule.expr}{f' ({tz})' if tz else ''}{catchup}{state}")
        typer.echo("  next: " + ", ".join(format_time(t, tz) for t in u.next_at))
        last = format_time(u.last_slot, tz) if u.last_slot is not None else "never"
        typer.echo(f"  last fired: {last}")


@app.command("tick")
@handle_errors
def tick_command(
    now: Now = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One scheduling pass: fire every due slot once (its run starts in the background).

    For running schedules from cron or a systemd timer instead of `orchestrate worker`;
    a slot a worker (or an earlier tick) fired is never fired again.

    Examples:

      orchestrate schedule tick

      orchestrate schedule tick --now 2030-01-01T06:00:00+00:00
    """
    from orchestrate.services import registry
    from orchestrate.store import open_store
    from orchestrate.worker.schedules import claimer, schedules, tick

    s = settings()
    store = open_store(s.store_location)
    fired = tick(
        s,
        store,
        schedules(registry.sync(s, store)),
        _now(now),
        claimer("tick"),
        lambda run_id, _reason: _detach(s, run_id),
    )
    if as_json:
        data = [
            {"pipeline": f.schedule.pipeline, "slot_at": f.slot_at, "run": f.run_id, "outcome": f.outcome}
            for f in fired
        ]
        typer.echo(json.dumps(data, indent=2))
        return
    if not fired:
        typer.echo("nothing due")
    for f in fired:
        slot = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.slot_at))
        run = f" run {f.run_id}" if f.run_id else ""
        typer.echo(f"{f.schedule.pipeline} slot {slot}:{run} {f.outcome}")


def _detach(s: object, run_id: str) -> None:
    from orchestrate.services import runs

    runs.detach(s, run_id, None)  # type: ignore[arg-type]


@app.command("install")
@handle_errors
def install(
    every: Annotated[
        str, typer.Option("--every", help="How often cron calls the tick (a cron expression).")
    ] = "* * * * *",
    worker: Annotated[
        bool, typer.Option("--worker", help="Print a systemd service for `orchestrate worker` instead.")
    ] = False,
) -> None:
    """Print a crontab line and a systemd timer that run `orchestrate schedule tick` (installs nothing).

    Examples:

      orchestrate schedule install                  # then: crontab -e, paste the line

      orchestrate schedule install --worker > ~/.config/systemd/user/orchestrate-worker.service
    """
    from orchestrate.domain.errors import UsageError
    from orchestrate.spec.cron import problem

    s = settings()
    issue = problem(every, None)
    if issue:
        raise UsageError(f"--every: {issue}")
    exe = shutil.which("orchestrate") or f"{sys.executable} -m orchestrate"
    root = shlex.quote(str(s.root))
    log = shlex.quote(str(s.logs_dir / "schedule.log"))
    if worker:
        typer.echo(_service(exe, str(s.root)))
        return
    typer.echo("# crontab (crontab -e): one scheduling pass a minute; each slot fires once")
    typer.echo(f"{every} {exe} --workspace {root} schedule tick >> {log} 2>&1")
    typer.echo("")
    typer.echo("# or systemd (user units): ~/.config/systemd/user/orchestrate-tick.service")
    typer.echo("[Unit]\nDescription=orchestrate schedule tick\n")
    typer.echo(
        f"[Service]\nType=oneshot\nWorkingDirectory={s.root}\nExecStart={exe} --workspace {s.root} schedule tick"
    )
    typer.echo("")
    typer.echo(
        "# ~/.config/systemd/user/orchestrate-tick.timer, then: systemctl --user enable --now orchestrate-tick.timer"
    )
    typer.echo("[Unit]\nDescription=orchestrate schedules, every minute\n")
    typer.echo("[Timer]\nOnCalendar=*-*-* *:*:00\nPersistent=true\n\n[Install]\nWantedBy=timers.target")


def _service(exe: str, root: str) -> str:
    return (
        "# ~/.config/systemd/user/orchestrate-worker.service, then: "
        "systemctl --user enable --now orchestrate-worker\n"
        "[Unit]\nDescription=orchestrate worker\n\n"
        f"[Service]\nWorkingDirectory={root}\nExecStart={exe} --workspace {root} worker\n"
        "KillSignal=SIGTERM\nTimeoutStopSec=90\nRestart=on-failure\n\n"
        "[Install]\nWantedBy=default.target"
    )
