"""Cron schedules (DESIGN §9): 5-field expressions via croniter, in a time zone or local time.

Pure functions of their arguments (the current time is always passed in), so schedules
are tested with any clock. Slot times are epoch seconds; a slot "fires" once the clock
reaches it. Daylight-saving changes, as Vixie cron handles them:

- a local time that happens twice (autumn, clocks go back): an expression with a fixed
  minute and hour (``30 2 * * *``, ``@daily``) fires once, at the first occurrence; one
  with ``*`` or a step in its minute or hour (``*/30 * * * *``, ``@hourly``) fires in both
  hours, as elapsed time goes;
- a local time that does not exist (spring, clocks go forward): croniter moves the slot to
  the first instant after the gap, so ``30 2 * * *`` fires at 03:00 that day (once), and
  ``0 * * * *`` has no 02:00 slot (01:00 is followed by 03:00).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

MAX_CATCHUP = 1000  # catchup: true fires at most this many missed slots at once


def zone(tz: str | None) -> tzinfo:
    """The zone of ``tz`` (an IANA name), or this machine's local zone (with its DST rules)."""
    if tz:
        from zoneinfo import ZoneInfo

        return ZoneInfo(tz)
    from dateutil.tz import tzlocal  # croniter's own dependency

    return tzlocal()


def problem(expr: str, tz: str | None) -> str | None:
    """Why the expression or the zone is unusable, or None."""
    from croniter import croniter

    if not croniter.is_valid(expr):
        return f'"{expr}" is not a cron expression (5 fields: minute hour day-of-month month day-of-week)'
    if tz:
        from zoneinfo import ZoneInfoNotFoundError

        try:
            zone(tz)
        except (ZoneInfoNotFoundError, ValueError):
            return f'"{tz}" is not a time zone (use an IANA name such as Europe/Paris or UTC)'
    return None


def key(expr: str, tz: str | None) -> str:
    """How a schedule is stored: the expression, and its zone when given."""
    expr = " ".join(expr.split())
    return f"{expr} @{tz}" if tz else expr


def fixed_time(expr: str) -> bool:
    """Whether the expression fires at set wall-clock times (no ``*`` nor step in its minute and hour)."""
    text = expr.strip().lower()
    if text.startswith("@"):
        return text != "@hourly"
    fields = text.split()
    return len(fields) >= 2 and not any(c in field for field in fields[:2] for c in "*/")


def _repeat(at: float, where: tzinfo) -> bool:
    """Whether ``at`` is the second occurrence of its local time (the hour repeated when clocks go back)."""
    local = datetime.fromtimestamp(at, where)
    return local.replace(fold=0).timestamp() != at


def next_times(expr: str, tz: str | None, after: float, count: int = 1) -> list[float]:
    """The next ``count`` slot times strictly after ``after``."""
    from croniter import croniter

    where = zone(tz)
    once = fixed_time(expr)
    it = croniter(expr, datetime.fromtimestamp(after, where))
    out: list[float] = []
    while len(out) < count:
        at = it.get_next(datetime).timestamp()
        if not (once and _repeat(at, where)):
            out.append(at)
    return out


def due(expr: str, tz: str | None, after: float, until: float, limit: int = MAX_CATCHUP) -> list[float]:
    """Slot times in (after, until], oldest first: the newest ``limit`` of them when there are more.

    Walked backwards from ``until``, so a long downtime of an every-minute schedule costs
    ``limit`` steps, not one per missed minute.
    """
    from croniter import croniter

    # croniter steps back from strictly before its start: start just after ``until``.
    where = zone(tz)
    once = fixed_time(expr)
    it = croniter(expr, datetime.fromtimestamp(until + 0.001, where))
    slots: list[float] = []
    while len(slots) < limit:
        at = it.get_prev(datetime).timestamp()
        if at <= after:
            break
        if not (once and _repeat(at, where)):
            slots.append(at)
    return slots[::-1]


def format_time(at: float, tz: str | None) -> str:
    """A slot time as people read it, in the schedule's zone: 2030-01-01 06:00 CET."""
    moment = datetime.fromtimestamp(at, zone(tz))
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()
