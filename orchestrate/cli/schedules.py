"""``orchestrate schedule list|tick|install``: cron triggers without (or beside) the worker."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrate.cli.common import handle_errors, settings

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store import Store
    from orchestrate.worker.schedules import Schedule

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
    from orchestrate.domain.errors import UsageError
    from orchestrate.worker.config import env_now, parse_now

    if value is not None:
        at = parse_now(value, "--now")
        if at is None:
            raise UsageError("--now: empty", hint="give a time, e.g. --now 2030-01-01T06:00:00+00:00")
        return at
    at = env_now(os.environ)
    return time.time() if at is None else at


def _found(s: Settings, store: Store) -> list[Schedule]:
    """The schedules of pipelines.d/; each invalid file said on stderr (file:line: why)."""
    from orchestrate.services import registry
    from orchestrate.worker.schedules import schedules

    rows = registry.sync(s, store)
    for row in rows:
        if row.error:
            kept = f"keeping version {row.version}" if row.version else "no valid version to schedule"
            typer.echo(f"invalid definition: {row.error}; {kept}", err=True)
    return schedules(rows)


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
    from orchestrate.spec.cron import format_time
    from orchestrate.store import open_store
    from orchestrate.worker.schedules import upcoming

    s = settings()
    at = _now(now)
    store = open_store(s.store_location)
    rows = upcoming(store, _found(s, store), at, count)
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
    """One scheduling pass: fire every due slot once, then start queued runs that may start.

    Its runs start in the background (at most worker.max_runs at once), as the worker
    starts them: queued runs (`pipeline run --queue`, or a schedule's run waiting for its
    pipeline's concurrency slot) start as soon as their pipeline's limit allows. A slot a
    worker (or an earlier tick) fired is never fired again. A --now later than the real
    time is a rehearsal: it says what would fire and records nothing. From cron, prefer
    `orchestrate worker --once` (`schedule install` prints it): it also handles approval
    timeouts, decided approvals and orphaned runs.

    Examples:

      orchestrate schedule tick

      orchestrate schedule tick --now 2030-01-01T06:00:00+00:00   # a rehearsal
    """
    from orchestrate.store import open_store
    from orchestrate.worker.config import worker_config
    from orchestrate.worker.schedules import claimer, tick
    from orchestrate.worker.service import Worker

    s = settings()
    at = _now(now)
    store = open_store(s.store_location)
    worker = Worker(s, worker_config(s.config, os.environ), log=lambda _line: None)
    fired = tick(s, store, _found(s, store), at, claimer("tick"), worker.start, worker.children.has_capacity)
    from_queue = worker.start_queued()
    if as_json:
        data = {
            "slots": [
                {"pipeline": f.schedule.pipeline, "slot_at": f.slot_at, "run": f.run_id, "outcome": f.outcome}
                for f in fired
            ],
            "queued_started": from_queue,
        }
        typer.echo(json.dumps(data, indent=2))
        return
    if not fired and not from_queue:
        typer.echo("nothing due")
    for f in fired:
        slot = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.slot_at))
        run = f" run {f.run_id}" if f.run_id and f.run_id not in f.outcome else ""
        typer.echo(f"{f.schedule.pipeline} slot {slot}:{run} {f.outcome}")
    for run_id in from_queue:
        typer.echo(f"queued run {run_id}: started")


@app.command("install")
@handle_errors
def install(
    every: Annotated[
        str, typer.Option("--every", help="How often cron calls the pass (a cron expression).")
    ] = "* * * * *",
    worker: Annotated[
        bool, typer.Option("--worker", help="Print a systemd service for `orchestrate worker` instead.")
    ] = False,
) -> None:
    """Print a crontab line and a systemd timer that run `orchestrate worker --once` (installs nothing).

    `worker --once` is one pass of the worker: due cron slots, queued runs, approval
    timeouts, decided approvals and orphaned runs. The systemd timer follows --every
    (OnCalendar); an expression OnCalendar cannot say (day of month and day of week
    both set) gets the crontab line only, and a note why.

    Examples:

      orchestrate schedule install                  # then: crontab -e, paste the line

      orchestrate schedule install --every "*/5 * * * *"

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
    every = " ".join(every.split())
    how_often = "every minute" if every == "* * * * *" else f'on "{every}"'
    typer.echo(f"# crontab (crontab -e): one worker pass {how_often}; each slot fires once")
    typer.echo(f"{every} {exe} --workspace {root} worker --once >> {log} 2>&1")
    typer.echo("")
    calendar = on_calendar(every)
    if calendar is None:
        typer.echo(
            f'# no systemd timer: OnCalendar cannot say "{every}" (day of month and day of week both '
            "set, or a step over a range); use the crontab line"
        )
        return
    typer.echo("# or systemd (user units): ~/.config/systemd/user/orchestrate-tick.service")
    typer.echo("[Unit]\nDescription=orchestrate worker pass\n")
    typer.echo(
        f"[Service]\nType=oneshot\nWorkingDirectory={s.root}\nExecStart={exe} --workspace {s.root} worker --once"
    )
    typer.echo("")
    typer.echo(
        "# ~/.config/systemd/user/orchestrate-tick.timer, then: systemctl --user enable --now orchestrate-tick.timer"
    )
    typer.echo(f"[Unit]\nDescription=orchestrate schedules, {how_often}\n")
    typer.echo(f"[Timer]\nOnCalendar={calendar}\nPersistent=true\n\n[Install]\nWantedBy=timers.target")


MACROS = {
    "@yearly": "yearly",
    "@annually": "yearly",
    "@monthly": "monthly",
    "@weekly": "weekly",
    "@daily": "daily",
    "@midnight": "daily",
    "@hourly": "hourly",
}
DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def on_calendar(expr: str) -> str | None:
    """The systemd OnCalendar= of a 5-field cron expression, or None when it has none.

    ``*/5 * * * *`` → ``*-*-* *:00/5:00``; ``30 6 * * 1-5`` → ``Mon..Fri *-*-* 06:30:00``.
    Cron fires when the day of month OR the day of week matches (both set); OnCalendar
    needs both: such expressions have no equivalent.
    """
    text = expr.strip().lower()
    if text.startswith("@"):
        return MACROS.get(text)
    minute, hour, dom, month, dow = text.split()
    if dom != "*" and dow != "*":
        return None
    for name, n in zip(MONTHS, range(1, 13), strict=True):
        month = month.replace(name, str(n))
    parts = [_field(minute, 0, 2), _field(hour, 0, 2), _field(dom, 1, 2), _field(month, 1, 2)]
    days = _days(dow)
    if None in parts or days is None:
        return None
    m, h, d, mo = parts
    return f"{days + ' ' if days else ''}*-{mo}-{d} {h}:{m}:00"


def _field(field: str, low: int, width: int) -> str | None:
    """One cron field in OnCalendar's words: ``*``, ``5``, ``1,2``, ``1..5``, ``00/5``."""
    out = []
    for item in field.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            base = str(low) if step else "*"
        elif "-" in base:
            if step:
                return None
            a, b = base.split("-", 1)
            out.append(f"{int(a):0{width}d}..{int(b):0{width}d}")
            continue
        elif not base.isdigit():
            return None
        if base != "*":
            base = f"{int(base):0{width}d}"
        out.append(f"{base}/{int(step)}" if step else base)
    return ",".join(out)


def _days(dow: str) -> str | None:
    """The day-of-week field as systemd names (``Mon..Fri``); "" for every day."""
    if dow == "*":
        return ""
    out = []
    for item in dow.split(","):
        if "/" in item:
            return None
        names = [
            DAYS[int(x)] if x.isdigit() and int(x) <= 7 else x[:3].capitalize() for x in item.split("-", 1)
        ]
        if not all(n in DAYS for n in names):
            return None
        out.append("..".join(names))
    return ",".join(out)


def _service(exe: str, root: str) -> str:
    return (
        "# ~/.config/systemd/user/orchestrate-worker.service, then: "
        "systemctl --user enable --now orchestrate-worker\n"
        "[Unit]\nDescription=orchestrate worker\n\n"
        f"[Service]\nWorkingDirectory={root}\nExecStart={exe} --workspace {root} worker\n"
        "KillSignal=SIGTERM\nTimeoutStopSec=90\nRestart=on-failure\n\n"
        "[Install]\nWantedBy=default.target"
    )
