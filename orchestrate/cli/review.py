"""``orchestrate review``: findings over recent runs, and the pipelines scheduled for them (DESIGN §8)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.domain.errors import UsageError
from orchestrate.domain.status import ExitCode


@handle_errors
def review_command(
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Start review.on's pipeline for each finding (once per cool-down)."),
    ] = False,
    history: Annotated[bool, typer.Option("--history", help="List the actions scheduled so far.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when there are findings (for CI).")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="With --history: how many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find what needs a look in recent runs, approvals and goals; schedule a pipeline for it.

    Findings: stale runs, the same stage failing in consecutive runs, timeout patterns,
    duration regressions, cost anomalies, stuck approvals, duplicate queued runs and
    stalled goals, each with a severity, evidence (run ids) and a suggested action.

    Exit code: 0, whatever is found; with --check, 1 when there is any finding. Thresholds,
    the cool-down and the pipelines to schedule are under review: in orchestrate.yaml.

    Examples:

      orchestrate review

      orchestrate review --json | jq '.findings[] | select(.severity == "high")'

      orchestrate review --apply        # with review: {on: {repeated_failure: diagnose}}

      orchestrate review --history

      orchestrate review --check        # in CI: fail when something needs a look
    """
    from orchestrate.review import service
    from orchestrate.store import open_store
    from orchestrate.ui import review_view
    from orchestrate.ui.console import stdout_console

    if history and (apply or check):
        flag = "--apply" if apply else "--check"
        raise UsageError(
            f"{flag} cannot be used with --history",
            hint="orchestrate review --history lists past actions only",
        )
    s = settings()
    with open_store(s.store_location) as store:
        if history:
            actions = service.history(store, limit)
            if as_json:
                typer.echo(json.dumps([service.action_json(a) for a in actions], indent=2))
            else:
                stdout_console().print(review_view.history_table(actions, time.time()))
            return
        result = service.review(s, store)
        outcomes = service.apply(s, store, result.findings, result.now, by=s.user) if apply else None
    if as_json:
        data: dict[str, object] = {"findings": [f.to_json() for f in result.findings]}
        if outcomes is not None:
            data["applied"] = [service.outcome_json(o) for o in outcomes]
        typer.echo(json.dumps(data, indent=2))
    else:
        console = stdout_console()
        console.print(review_view.findings_view(result.findings))
        if outcomes is not None:
            console.print(review_view.outcomes_view(outcomes))
    if check and result.findings:
        raise typer.Exit(int(ExitCode.RUN_FAILED))
