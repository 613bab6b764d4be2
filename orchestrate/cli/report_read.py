"""``orchestrate report list|show|job show`` and ``orchestrate mcp``: reading reported work.

Unlike the reporting commands, these are for people and fail as usual. ``--watch``
redraws every 2 s, so the durations of running jobs tick.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from orchestrate.cli.common import GLOBALS, handle_errors
from orchestrate.cli.report import AsJson, JobId, app, echo_json, job_app, open_workspace


@app.command("list")
@handle_errors
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status (running, failure, ...).")
    ] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="Only ticket_work, sprint_close or custom.")
    ] = None,
    sprint: Annotated[str | None, typer.Option("--sprint", help="Only this sprint.")] = None,
    stale: Annotated[
        bool, typer.Option("--stale", help="Only running pipelines with no news for stale_after.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most N pipelines.")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Skip the newest N.")] = 0,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh every 2 s until Ctrl-C.")] = False,
    as_json: AsJson = False,
) -> None:
    """Reported pipelines, newest first, stale ones flagged (running, no update for stale_after: 6h).

    Examples:

      orchestrate report list --status running

      orchestrate report list --stale --json

      orchestrate report list --type ticket_work --watch
    """
    from orchestrate.domain.observe import parse_status, parse_type
    from orchestrate.observe import records, service

    s, store = open_workspace()
    filters: dict[str, Any] = dict(
        status=parse_status(status) if status else None,
        type=parse_type(type_) if type_ else None,
        sprint=sprint,
        stale=stale,
        limit=limit,
        offset=offset,
    )
    if as_json:
        echo_json(records.page_json(service.list_pipelines(s, store, **filters), s.root))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.observe_view import pipeline_table
    from orchestrate.ui.observe_view import watch as watch_live

    def frame():  # type: ignore[no-untyped-def]
        return pipeline_table(service.list_pipelines(s, store, **filters))

    if watch:
        watch_live(stdout_console(), frame)
    else:
        stdout_console().print(frame())


@app.command("show")
@handle_errors
def show(
    pipeline: Annotated[str, typer.Argument(help="Pipeline id (a unique prefix is enough).")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh every 2 s until Ctrl-C.")] = False,
    as_json: AsJson = False,
) -> None:
    """A reported pipeline as a tree: steps, jobs, statuses, durations, summaries and log paths.

    Examples:

      orchestrate report show 01jd3k

      orchestrate report show 01jd3k --watch
    """
    from orchestrate.observe import records, service

    s, store = open_workspace()
    after = service.stale_after(s)
    if as_json:
        echo_json(records.pipeline_json(service.get_pipeline(store, pipeline), s.root, time.time(), after))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.observe_view import pipeline_tree
    from orchestrate.ui.observe_view import watch as watch_live

    def frame():  # type: ignore[no-untyped-def]
        return pipeline_tree(service.get_pipeline(store, pipeline), s.root, time.time(), after)

    if watch:
        watch_live(stdout_console(), frame)
    else:
        stdout_console().print(frame())


@job_app.command("show")
@handle_errors
def show_job(job_id: JobId, as_json: AsJson = False) -> None:
    """A job: status, summary, and its whole markdown log.

    Example:

      orchestrate report job show 01jd3m
    """
    from orchestrate.observe import records, service

    s, store = open_workspace()
    log = service.job_log(s, store, job_id)
    if as_json:
        data = records.job_json(log.job, s.root, time.time())
        data.update(records.job_log_json(log))
        echo_json(data)
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.observe_view import job_log_view

    stdout_console().print(job_log_view(log.job, log.path, log.markdown, log.cleaned_at))


@handle_errors
def mcp_command() -> None:
    """Serve the reporting tools (and run_pipeline, get_run_status, list_approvals) over MCP on stdio.

    An MCP client starts it as the command `orchestrate mcp`; outside the workspace, add --workspace DIR.

    It offers no tool to approve or reject: people decide.

    Example:

      orchestrate --workspace ~/work/myspace mcp
    """
    try:
        from orchestrate.mcp import serve
    except ModuleNotFoundError as e:
        from orchestrate.domain.errors import FeatureNotAvailable

        raise FeatureNotAvailable(
            f"orchestrate mcp needs the MCP SDK: {e}", hint="pip install 'mcp>=2.3,<3'"
        ) from None
    serve(GLOBALS.workspace)
