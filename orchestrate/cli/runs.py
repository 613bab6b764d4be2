"""``orchestrate pipeline status|cancel|history|logs``: runs, from any terminal."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.cli.pipeline import app

RunId = Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")]


def _store():  # type: ignore[no-untyped-def]
    from orchestrate.store import open_store

    return open_store(settings().db_path)


@app.command("status")
@handle_errors
def status(
    run_id: RunId,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep the table live until the run ends.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
) -> None:
    """A run and its stages: status, attempts, durations, outputs; live with --watch.

    Examples:

      orchestrate pipeline status 01jd3k

      orchestrate pipeline status 01jd3k --watch

      orchestrate pipeline status 01jd3k --json | jq .stages[].status
    """
    from orchestrate.services.control import orphaned

    store = _store()
    run = store.resolve_run_id(run_id)
    if as_json:
        record = store.run_record(run)
        record["orphaned"] = orphaned(store.run_state(run))
        typer.echo(json.dumps(record, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.run_view import status_view

    console = stdout_console()
    if not watch:
        state = store.run_state(run)
        console.print(status_view(state, orphaned(state)))
        return
    from orchestrate.domain.status import RUN_TERMINAL
    from orchestrate.ui.reporters import watch as watch_live

    def frame():  # type: ignore[no-untyped-def]
        state = store.run_state(run)
        lost = orphaned(state)
        return status_view(state, lost), state.status in RUN_TERMINAL or lost

    watch_live(console, frame)


@app.command("cancel")
@handle_errors
def cancel(run_id: RunId) -> None:
    """Cancel a run from any terminal: its process stops it within a second, as `halt` does.

    A run whose process died is marked cancelled here. Who cancelled is recorded.

    Example:

      orchestrate pipeline cancel 01jd3k
    """
    from orchestrate.services import control

    s = settings()
    store = _store()
    state = control.cancel(store, run_id, s.user)
    if state.status.value == "cancelled":
        typer.echo(f"run {state.run_id} cancelled ({state.reason})")
    else:
        typer.echo(f"run {state.run_id}: cancel requested by {s.user}; it is stopping ({state.status.value})")


@app.command("history")
@handle_errors
def history(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name (deleted pipelines too).")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    status: Annotated[str | None, typer.Option("--status", help="Only runs with this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A pipeline's runs, newest first: status, start, duration, version, who, why.

    Examples:

      orchestrate pipeline history ci

      orchestrate pipeline history ci --status failed --limit 5
    """
    from orchestrate.services import control

    store = _store()
    runs = control.history(store, pipeline, limit, status)
    usage = store.run_usage([r.id for r in runs])
    now = time.time()
    if as_json:
        rows = [
            r.__dict__
            | {
                "status": r.status.value,
                "duration_seconds": r.duration(now),
                "tokens": usage.get(r.id, (0, 0.0))[0],
                "cost_usd": usage.get(r.id, (0, 0.0))[1],
            }
            for r in runs
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.registry_view import history_table

    stdout_console().print(history_table(pipeline, runs, now, usage))


@app.command("logs")
@handle_errors
def logs(
    run_id: RunId,
    stage: Annotated[str | None, typer.Argument(help="One stage (default: every stage, in order).")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing as the logs grow, until the run ends.")
    ] = False,
    attempt: Annotated[
        int | None, typer.Option("--attempt", help="Only this attempt's output (needs STAGE).")
    ] = None,
) -> None:
    """The output of a run's stages, straight from logs/<run>/<stage>.log.

    Examples:

      orchestrate pipeline logs 01jd3k

      orchestrate pipeline logs 01jd3k build --attempt 2

      orchestrate pipeline logs 01jd3k --follow
    """
    from orchestrate.domain.errors import UsageError
    from orchestrate.services import logs as stage_logs

    store = _store()
    run = store.resolve_run_id(run_id)
    out = sys.stdout.buffer
    if attempt is not None and stage is None:
        raise UsageError(
            "--attempt needs a STAGE", hint=f"orchestrate pipeline logs {run_id} STAGE --attempt {attempt}"
        )
    if follow:
        many = stage is None
        for name, data in stage_logs.follow(store, run, stage):
            if many:
                data = b"".join(
                    f"{name} | ".encode() + line + b"\n" for line in data.rstrip(b"\n").split(b"\n")
                )
            out.write(data)
            out.flush()
        return
    state = store.run_state(run)
    chosen = stage_logs.stage_logs(state, stage)
    for log in chosen:
        if stage is None:
            out.write(
                f"==> {log.stage} ({log.attempts} attempt{'s' if log.attempts > 1 else ''}) <==\n".encode()
            )
        if attempt is not None:
            try:
                with open(log.path, "rb") as f:
                    out.write(stage_logs.attempt_section(f.read(), attempt))
            except FileNotFoundError:
                raise UsageError(f"{log.path}: the log is gone (removed by hand or by gc)") from None
        else:
            for chunk in stage_logs.read_chunks(log.path):
                out.write(chunk)
    if not chosen:
        typer.echo(f"run {run}: no stage has started yet", err=True)
    out.flush()
