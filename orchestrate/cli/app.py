"""The ``orchestrate`` command. Importing this module must stay cheap: commands import what they need."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrate import __version__
from orchestrate.cli import (  # noqa: F401 - registry, runs and report_read add commands
    agents,
    approvals,
    events,
    goals,
    metrics,
    pipeline,
    registry,
    report,
    report_read,
    review,
    runs,
)
from orchestrate.cli import db as db_cli
from orchestrate.cli import experiments as experiments_cli
from orchestrate.cli import schedules as schedules_cli
from orchestrate.cli import worker as worker_cli
from orchestrate.cli.common import GLOBALS, handle_errors
from orchestrate.cli.serve import serve as serve_command

app = typer.Typer(
    name="orchestrate",
    help=(
        "Local-first pipeline orchestrator for AI-agent and CI/CD work.\n\n"
        "Examples:\n\n"
        "  orchestrate init myspace && cd myspace\n\n"
        "  orchestrate pipeline run hello\n\n"
        "  orchestrate pipeline validate pipelines.d/*.yaml"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(events.app, name="event")
app.add_typer(approvals.app, name="approval")
app.add_typer(agents.app, name="agent")
app.add_typer(metrics.app, name="metrics")
app.add_typer(experiments_cli.app, name="experiment")
app.add_typer(report.app, name="report")
app.command("mcp")(report_read.mcp_command)
app.add_typer(goals.app, name="goal")
app.command("review")(review.review_command)
app.command("serve")(serve_command)
app.command("worker")(worker_cli.worker_command)
app.add_typer(schedules_cli.app, name="schedule")
app.add_typer(db_cli.app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"orchestrate {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace folder (default: ORCHESTRATE_HOME, else found upward from here).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    GLOBALS.workspace = workspace
    GLOBALS.debug = debug


@app.command("init")
@handle_errors
def init(
    folder: Annotated[
        Path, typer.Argument(help="Folder to make a workspace of (created if missing).")
    ] = Path("."),
) -> None:
    """Create a workspace: orchestrate.yaml, pipelines.d/ (with a hello pipeline), checkpoints/, logs/.

    Examples:

      orchestrate init myspace && cd myspace && orchestrate pipeline run hello

      orchestrate init .            # make the current folder a workspace
    """
    from orchestrate.services.workspace import init_workspace

    created = init_workspace(folder)
    if created:
        typer.echo(f"created workspace {folder}: " + ", ".join(created))
        typer.echo(f"next: cd {folder} && orchestrate pipeline run hello")
    else:
        typer.echo(f"{folder} is already a workspace; nothing created")


@app.command("gc")
@handle_errors
def gc(
    keep_days: Annotated[
        float | None, typer.Option("--keep-days", help="Delete finished runs older than N days.")
    ] = None,
    keep_runs: Annotated[
        int | None, typer.Option("--keep-runs", help="Keep only the newest N runs of each pipeline.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go; delete nothing.")] = False,
) -> None:
    """Prune old runs: their rows, logs and checkpoints. Active runs are never touched.

    Examples:

      orchestrate gc --keep-days 30

      orchestrate gc --keep-runs 100 --dry-run
    """
    from orchestrate.cli.common import settings
    from orchestrate.services.maintenance import gc as prune
    from orchestrate.store import open_store

    s = settings()
    ids = prune(s, open_store(s.store_location), keep_days, keep_runs, dry_run)
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {len(ids)} run{'s' if len(ids) != 1 else ''}" + (f": {', '.join(ids[:10])}" if ids else "")
    )
    if len(ids) > 10:
        typer.echo(f"... and {len(ids) - 10} more")


def main() -> None:
    app(prog_name="orchestrate")
