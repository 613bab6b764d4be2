"""The ``orchestrate`` command. Importing this module must stay cheap: commands import what they need."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrate import __version__
from orchestrate.cli import pipeline
from orchestrate.cli.common import GLOBALS, handle_errors

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


def main() -> None:
    app(prog_name="orchestrate")
