"""``orchestrate report …``: agents report their own work as Pipeline → Step → Job (DESIGN §7).

The writing commands are best effort: reporting must never fail the agent's work, so
any error (no workspace, store locked, unknown id, disk full) prints one warning line on
stderr and exits 0, unless ``--strict``. The reading commands (list, show, job show) are
for people and fail as usual. ``orchestrate mcp`` serves the same operations as MCP tools.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from orchestrate.cli.common import handle_errors, settings

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Report an agent's own work (pipelines, steps, jobs, logs) and watch it.\n\n"
    "Example:\n\n"
    '  P=$(orchestrate report pipeline create --type ticket_work --title "PROJ-42 fix login")\n\n'
    '  J=$(orchestrate report job start research "Read the code" --pipeline $P)',
    no_args_is_help=True,
)
pipeline_app = typer.Typer(
    help="Create reported pipelines.\n\nExample:\n\n"
    '  orchestrate report pipeline create --type ticket_work --title "PROJ-42 fix login"',
    no_args_is_help=True,
)
job_app = typer.Typer(
    help="Start, update and show the jobs of a reported pipeline.\n\nExample:\n\n"
    '  orchestrate report job start coding "Fix the parser" --pipeline 01jd3k',
    no_args_is_help=True,
)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(job_app, name="job")

Strict = Annotated[
    bool, typer.Option("--strict", help="Exit non-zero on a reporting error instead of warning.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print every field as JSON.")]
PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline",
        "-p",
        help="Pipeline id (default: ORCHESTRATE_REPORT_PIPELINE, else the one unfinished pipeline).",
    ),
]
JobId = Annotated[str, typer.Argument(help="Job id (a unique prefix is enough).")]


def _environmental(e: BaseException) -> bool:
    """The store or the disk failed (locked, unwritable, full): not a bug, not the agent's mistake."""
    import sqlite3

    return isinstance(e, OSError | sqlite3.Error)


def _one_line(e: BaseException) -> str:
    from orchestrate.domain.errors import OrchestrateError

    if isinstance(e, OrchestrateError):
        text = e.message + (f" (hint: {e.hint})" if e.hint else "")
    elif _environmental(e):
        text = f"{type(e).__name__}: {e}"
    else:
        text = f"internal error: {type(e).__name__}: {e}"
    return " ".join(text.split())


def best_effort(fn: Callable[P, R]) -> Callable[P, R | None]:
    """Any error: one warning line on stderr and exit 0; with ``--strict``, the usual error and exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except Exception as e:
            if not kwargs.get("strict"):
                typer.echo(f"orchestrate report: warning: {_one_line(e)} (not recorded)", err=True)
                return None
            if _environmental(e):
                from orchestrate.domain.errors import WorkspaceError

                raise WorkspaceError(
                    f"could not record the report: {_one_line(e)}",
                    hint="is the workspace (orchestrate.db, logs/) writable, and the disk not full?",
                ) from e
            raise

    return wrapper


def open_workspace():  # type: ignore[no-untyped-def]
    from orchestrate.store import open_store

    s = settings()
    return s, open_store(s.store_location)


def _where():  # type: ignore[no-untyped-def]
    from orchestrate.observe.service import Where

    return Where.from_env(os.environ)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@pipeline_app.command("create")
@handle_errors
@best_effort
def create_pipeline(
    type_: Annotated[
        str,
        typer.Option("--type", help="ticket_work (steps research, coding, wrap-up), sprint_close or custom."),
    ] = "custom",
    title: Annotated[str | None, typer.Option("--title", help="What the work is.")] = None,
    sprint: Annotated[str | None, typer.Option("--sprint", help="The sprint it belongs to.")] = None,
    step: Annotated[
        list[str] | None, typer.Option("--step", help="Another step, in order (repeatable).")
    ] = None,
    as_json: AsJson = False,
    strict: Strict = False,
) -> None:
    """Start a reported pipeline; prints its id (export it as ORCHESTRATE_REPORT_PIPELINE).

    Examples:

      orchestrate report pipeline create --type ticket_work --title "PROJ-42 fix login" --sprint 12

      orchestrate report pipeline create --title "Nightly triage" --step collect --step triage
    """
    from orchestrate.domain.observe import parse_type
    from orchestrate.observe import records, service

    s, store = open_workspace()
    p = service.create_pipeline(
        s, store, parse_type(type_), title or "", sprint=sprint, steps=step or (), where=_where()
    )
    if as_json:
        echo_json(records.pipeline_json(p, s.root, time.time(), service.stale_after(s)))
    else:
        typer.echo(p.id)


@job_app.command("start")
@handle_errors
@best_effort
def start_job(
    step: Annotated[str, typer.Argument(help="Step name (research, coding, wrap-up, or a new one).")],
    name: Annotated[str, typer.Argument(help="What the job does.")],
    description: Annotated[str | None, typer.Option("--description", "-d", help="More about it.")] = None,
    pipeline: PipelineOpt = None,
    status: Annotated[str, typer.Option("--status", help="running (default) or pending.")] = "running",
    as_json: AsJson = False,
    strict: Strict = False,
) -> None:
    """Report a job started in a step; prints the job id. Its step and pipeline run with it.

    Inside a stage of an executed pipeline, a pipeline for that stage is created on the first job.

    Examples:

      orchestrate report job start research "Read the ticket and the code" --pipeline 01jd3k

      orchestrate report job start coding "Fix the parser" -d "src/parse.py"
    """
    from orchestrate.domain.observe import ReportStatus, parse_status
    from orchestrate.observe import records, service

    state = parse_status(status, allowed=(ReportStatus.PENDING, ReportStatus.RUNNING))
    s, store = open_workspace()
    job = service.start_job(
        s, store, step, name, pipeline=pipeline, description=description, status=state, where=_where()
    )
    if as_json:
        echo_json(records.job_json(job, s.root, time.time()))
    else:
        typer.echo(job.id)


@job_app.command("update")
@handle_errors
@best_effort
def update_job(
    job_id: JobId,
    status: Annotated[str, typer.Option("--status", help="success, failure or running.")] = "",
    summary: Annotated[str | None, typer.Option("--summary", help="What came of it.")] = None,
    as_json: AsJson = False,
    strict: Strict = False,
) -> None:
    """Report a job's new status; a failure fails its step and its pipeline.

    Examples:

      orchestrate report job update 01jd3m --status success --summary "parser fixed, 3 tests added"

      orchestrate report job update 01jd3m --status failure --summary "tests still red"
    """
    from orchestrate.domain.observe import parse_status
    from orchestrate.observe import records, service

    state = parse_status(status)
    s, store = open_workspace()
    job = service.update_job(store, job_id, state, summary)
    p = service.get_pipeline(store, job.pipeline_id)
    step = next(st for st in p.steps if st.name == job.step)
    if as_json:
        data = records.job_json(job, s.root, time.time())
        data.update(step_status=step.status.value, pipeline_status=p.status.value)
        echo_json(data)
    else:
        typer.echo(
            f"{job.id} {job.status.value}; step {step.name} {step.status.value}; "
            f"pipeline {p.id} {p.status.value}"
        )


@app.command("log")
@handle_errors
@best_effort
def append_log(
    job_id: JobId,
    file: Annotated[
        str | None, typer.Option("--file", "-f", help="Markdown to append: a file, or - for stdin.")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", "-t", help="Markdown to append, given inline.")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Added to the section's heading.")] = None,
    as_json: AsJson = False,
    strict: Strict = False,
) -> None:
    """Append a markdown section (under a timestamp heading) to a job's log; prints the log's path.

    The log is logs/<pipeline>/<step>/<job>.md, created on the first append.

    Examples:

      orchestrate report log 01jd3m --file notes.md

      git diff --stat | orchestrate report log 01jd3m --file - --title "changes so far"

      orchestrate report log 01jd3m --text "Found the bug in **parse_header**."
    """
    from orchestrate.domain.errors import UsageError
    from orchestrate.observe import service

    if (file is None) == (text is None):
        raise UsageError("give the markdown with --file F (or - for stdin) or --text T", hint="not both")
    markdown = (
        text if text is not None else (sys.stdin.read() if file == "-" else Path(str(file)).read_text())
    )
    s, store = open_workspace()
    path = service.append_log(s, store, job_id, markdown, title=title)
    if as_json:
        echo_json({"job_id": store.reports().job(job_id).id, "log_path": str(path)})
    else:
        typer.echo(str(path))


@app.command("finish")
@handle_errors
@best_effort
def finish(
    pipeline: PipelineOpt = None,
    status: Annotated[
        str | None, typer.Option("--status", help="success, failure or cancelled (default: from the steps).")
    ] = None,
    summary: Annotated[str | None, typer.Option("--summary", help="How it went.")] = None,
    as_json: AsJson = False,
    strict: Strict = False,
) -> None:
    """Close a reported pipeline: open jobs are cancelled; without --status it fails if a step failed.

    Adds a line to logs/activity.md.

    Examples:

      orchestrate report finish --pipeline 01jd3k

      orchestrate report finish --status failure --summary "blocked on review"
    """
    from orchestrate.domain.observe import parse_status
    from orchestrate.observe import records, service

    state = parse_status(status) if status else None
    s, store = open_workspace()
    p = service.finish(s, store, pipeline=pipeline, status=state, summary=summary, where=_where())
    if as_json:
        echo_json(records.pipeline_json(p, s.root, time.time(), service.stale_after(s)))
    else:
        typer.echo(f"{p.id} {p.status.value}")


@app.command("clean")
@handle_errors
@best_effort
def clean(
    sprint: Annotated[
        str, typer.Option("--sprint", help="The sprint whose finished pipelines' logs go.")
    ] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; delete nothing.")] = False,
    as_json: AsJson = False,
    strict: Strict = False,
) -> None:
    """Delete the job logs of a sprint's finished pipelines (the pipelines and jobs stay).

    Example:

      orchestrate report clean --sprint 12
    """
    from orchestrate.observe import records, service

    s, store = open_workspace()
    done = service.clean(s, store, sprint, dry_run=dry_run)
    if as_json:
        echo_json(records.cleaned_json(done))
        return
    verb = "would delete" if dry_run else "deleted"
    n = len(done.cleaned)
    typer.echo(
        f"{verb} the logs of {n} finished pipeline{'s' if n != 1 else ''} of sprint {done.sprint} ({done.files} files)"
    )
    if done.still_open:
        typer.echo(f"left {len(done.still_open)} unfinished: {', '.join(done.still_open)}")
