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

    return open_store(settings().store_location)


def _reported(store, ref: str):  # type: ignore[no-untyped-def]
    """The reported pipeline REF names when it names no executed run, else None."""
    from orchestrate.domain.errors import NotFoundError

    try:
        store.resolve_run_id(ref)
        return None
    except NotFoundError:
        pass
    try:
        return store.reports().pipeline(ref)
    except NotFoundError:
        return None


@app.command("status")
@handle_errors
def status(
    run_id: RunId,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep the view live until the run ends.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between redraws with --watch.")
    ] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
) -> None:
    """A run and its stages: status, attempts, durations, outputs, stale and overdue; live with --watch.

    RUN may also be the id of a pipeline an agent reported (kind `reported`): its steps
    and jobs are shown. A running run with no update for `stale_after` (6h) is stale; a
    stage running longer than 3 × the P95 of its own past durations is overdue.

    Examples:

      orchestrate pipeline status 01jd3k

      orchestrate pipeline status 01jd3k --watch

      orchestrate pipeline status 01jd3k --json | jq .stages[].status
    """
    from orchestrate.services import freshness
    from orchestrate.services.control import orphaned

    s = settings()
    store = _store()
    limits = freshness.thresholds(s)
    reported = _reported(store, run_id)
    if reported is not None:
        _reported_status(s, store, reported.id, watch, interval, as_json, limits.stale_after)
        return
    run = store.resolve_run_id(run_id)
    if as_json:
        record = {"kind": "executed"} | store.run_record(run)
        record["orphaned"] = orphaned(store.run_state(run))
        record |= freshness.of_run(store, store.run_state(run), limits).as_json()
        typer.echo(json.dumps(record, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.run_view import status_view

    console = stdout_console()

    def frame():  # type: ignore[no-untyped-def]
        state = store.run_state(run)
        lost = orphaned(state)
        late = freshness.of_run(store, state, limits)
        return status_view(state, lost, stale=late.stale, overdue=late.overdue), state.done or lost

    if not watch:
        console.print(frame()[0])
        return
    from orchestrate.ui.reporters import watch as watch_live

    watch_live(console, frame, interval)


def _reported_status(s, store, pipeline_id, watch, interval, as_json, after):  # type: ignore[no-untyped-def]
    from orchestrate.observe import records

    if as_json:
        record = {"kind": "reported"} | records.pipeline_json(
            store.reports().pipeline(pipeline_id), s.root, time.time(), after
        )
        typer.echo(json.dumps(record, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.observe_view import pipeline_tree
    from orchestrate.ui.reporters import watch as watch_live

    def frame():  # type: ignore[no-untyped-def]
        p = store.reports().pipeline(pipeline_id)
        return pipeline_tree(p, s.root, time.time(), after), p.finished_at is not None

    if watch:
        watch_live(stdout_console(), frame, interval)
    else:
        stdout_console().print(frame()[0])


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
    pipeline: Annotated[
        str,
        typer.Argument(help="Pipeline name (deleted pipelines too), or a reported type: ticket_work, ..."),
    ],
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    status: Annotated[str | None, typer.Option("--status", help="Only runs with this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A pipeline's runs, newest first: status, start, duration, version, who, why; stale ones marked.

    Pipelines agents report (kind `reported`) have a type instead of a definition:
    `history ticket_work` lists the reported ticket_work pipelines.

    Examples:

      orchestrate pipeline history ci

      orchestrate pipeline history ci --status failed --limit 5

      orchestrate pipeline history ticket_work
    """
    from orchestrate.domain.observe import PipelineType
    from orchestrate.services import control, freshness

    s = settings()
    store = _store()
    if pipeline in {t.value for t in PipelineType} and store.pipeline(pipeline) is None:
        _reported_history(s, store, PipelineType(pipeline), limit, status, as_json)
        return
    runs = control.history(store, pipeline, limit, status)
    usage = store.run_usage([r.id for r in runs])
    now = time.time()
    stale = freshness.stale_runs(store, runs, freshness.thresholds(s), now)
    if as_json:
        rows = [
            {"kind": "executed"}
            | r.__dict__
            | {
                "status": r.status.value,
                "duration_seconds": r.duration(now),
                "tokens": usage.get(r.id, (0, 0.0))[0],
                "cost_usd": usage.get(r.id, (0, 0.0))[1],
                "stale": r.id in stale,
            }
            for r in runs
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.registry_view import history_table

    stdout_console().print(history_table(pipeline, runs, now, usage, stale))


def _reported_history(s, store, kind, limit, status, as_json):  # type: ignore[no-untyped-def]
    from orchestrate.domain.errors import UsageError
    from orchestrate.domain.observe import parse_status
    from orchestrate.observe import records, service

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    page = service.list_pipelines(
        s, store, type=kind, status=parse_status(status) if status else None, limit=limit
    )
    if as_json:
        rows = [{"kind": "reported"} | records.pipeline_json(p, s.root, page.now, page.stale_after, tree=False)
                for p in page.pipelines]  # fmt: skip
        typer.echo(json.dumps(rows, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.observe_view import pipeline_table

    stdout_console().print(pipeline_table(page))


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
    list_only: Annotated[bool, typer.Option("--list", help="Only list the log files.")] = False,
) -> None:
    """The output of a run's stages, straight from logs/<run>/<stage>.log.

    For a pipeline an agent reported (kind `reported`), the markdown logs of its jobs,
    logs/<pipeline>/<step>/<job>.md; STAGE then names a step.

    Examples:

      orchestrate pipeline logs 01jd3k

      orchestrate pipeline logs 01jd3k build --attempt 2

      orchestrate pipeline logs 01jd3k --follow

      orchestrate pipeline logs 01jd3m --list
    """
    from orchestrate.domain.errors import UsageError
    from orchestrate.services import logs as stage_logs

    store = _store()
    out = sys.stdout.buffer
    reported = _reported(store, run_id)
    if reported is not None:
        if follow or attempt is not None:
            raise UsageError("--follow and --attempt are for executed runs; a reported job log is one file")
        _job_logs(store, reported.id, stage, list_only)
        return
    run = store.resolve_run_id(run_id)
    if list_only:
        for log in stage_logs.stage_logs(store.run_state(run), stage):
            typer.echo(f"{log.stage}\t{log.attempts}\t{log.path}")
        return
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


def _job_logs(store, pipeline_id: str, step: str | None, list_only: bool) -> None:  # type: ignore[no-untyped-def]
    """Each job's markdown log, in step order: a header line, then the file (or why it is not there)."""
    from orchestrate.domain.errors import NotFoundError

    s = settings()
    p = store.reports().pipeline(pipeline_id)
    steps = [st for st in p.steps if step is None or st.name == step]
    if step is not None and not steps:
        known = ", ".join(st.name for st in p.steps) or "none yet"
        raise NotFoundError(f"reported pipeline {p.id} has no step {step!r} (steps: {known})")
    out = sys.stdout
    printed = 0
    for st in steps:
        for job in st.jobs:
            path = s.root / job.log_path if job.log_path else None
            if list_only:
                if path is not None:
                    out.write(f"{st.name}\t{job.name}\t{job.status.value}\t{path}\n")
                continue
            out.write(f"==> {st.name}/{job.name} ({job.status.value}) {path or 'no log yet'} <==\n")
            printed += 1
            if path is None:
                continue
            try:
                out.write(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n")
            except FileNotFoundError:
                why = "removed by report clean" if p.logs_cleaned_at is not None else "the file is gone"
                out.write(f"({why})\n\n")
    if not list_only and not printed:
        typer.echo(f"reported pipeline {p.id}: no job yet", err=True)
