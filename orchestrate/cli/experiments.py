"""``orchestrate experiment list|report``: compare the variants of an experiment (DESIGN §8; issue 10)."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings

app = typer.Typer(
    help=(
        "Experiments: the variants runs were assigned, compared with a stated test.\n\n"
        "Example:\n\n  orchestrate experiment report prompt-style"
    ),
    no_args_is_help=True,
    add_completion=False,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list")
@handle_errors
def list_experiments(as_json: AsJson = False) -> None:
    """Every experiment variant: runs and successes so far (declared variants without runs too).

    Examples:

      orchestrate experiment list

      orchestrate experiment list --json
    """
    from orchestrate.metrics.experiments import listing
    from orchestrate.store import open_store

    with open_store(settings().store_location) as store:
        rows = [dataclasses.asdict(r) for r in listing(store)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.experiments_view import list_view

    stdout_console().print(list_view(rows))


@app.command("report")
@handle_errors
def report(
    name: Annotated[str, typer.Argument(help="The experiment's name, e.g. prompt-style.")],
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only runs of this pipeline.")] = None,
    as_json: AsJson = False,
) -> None:
    """Per variant: runs, success rate (95% Wilson interval), P50/P95 duration, mean tokens and cost.

    Success is compared with Fisher's exact test (chi-square for more than two variants),
    duration with the Mann-Whitney U test (Kruskal-Wallis for more); the verdict names a
    difference at p < 0.05, else estimates the runs per variant still needed (α 0.05,
    power 0.8). Only finished runs (succeeded or failed) are compared.

    Examples:

      orchestrate experiment report prompt-style

      orchestrate experiment report prompt-style --pipeline review --json
    """
    from orchestrate.metrics.experiments import load_report
    from orchestrate.store import open_store

    with open_store(settings().store_location) as store:
        data = load_report(store, name, pipeline).to_json()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.experiments_view import report_view

    stdout_console().print(report_view(data))
