"""``orchestrate pipeline …``: validate, graph and run pipelines."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.domain.errors import SpecError
from orchestrate.domain.status import ExitCode, RunStatus

app = typer.Typer(
    help="Validate, inspect and run pipelines.\n\nExample:\n\n  orchestrate pipeline run ci --var environment=prod",
    no_args_is_help=True,
)


@app.command("validate")
@handle_errors
def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Pipeline files (default: every file in pipelines.d/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Check pipeline files against the language; nothing is stored or run.

    Every problem is reported as file:line:col: field: message. Exit 2 if any file is invalid.

    Examples:

      orchestrate pipeline validate pipelines.d/*.yaml

      orchestrate pipeline validate ci.yaml --json
    """
    from orchestrate.services.definitions import definition_files
    from orchestrate.spec.loader import load_pipeline
    from orchestrate.ui.console import print_error_lines, stdout_console

    paths = files or [_relative(p) for p in definition_files(settings().pipelines_dir)]
    results: list[dict[str, object]] = []
    for path in paths:
        try:
            spec = load_pipeline(path, display_path=str(path))
        except SpecError as e:
            results.append({"file": str(path), "valid": False, "errors": [i.__dict__ for i in e.issues]})
            if not as_json:
                print_error_lines(e.lines(), label=False)
            continue
        results.append({"file": str(path), "valid": True, "pipeline": spec.name, "stages": len(spec.stages)})
        if not as_json:
            stdout_console().print(f"✔ {path}: {spec.name}, {len(spec.stages)} stages", markup=False)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    if not paths and not as_json:
        typer.echo("no pipeline files found in pipelines.d/")
    if any(not r["valid"] for r in results):
        raise typer.Exit(int(ExitCode.INVALID_INPUT))


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class GraphFormat(StrEnum):
    text = "text"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


@app.command("graph")
@handle_errors
def graph(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name (pipelines.d/NAME.yaml) or a YAML file.")],
    fmt: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="text, mermaid, dot or json.")
    ] = GraphFormat.text,
) -> None:
    """Show the stage graph: levels as text, or Mermaid / Graphviz DOT / JSON to paste elsewhere.

    Examples:

      orchestrate pipeline graph ci

      orchestrate pipeline graph ci --format mermaid

      orchestrate pipeline graph ci --format dot | dot -Tsvg > ci.svg
    """
    from orchestrate.graph import Dag
    from orchestrate.services.definitions import load_for_reading
    from orchestrate.ui.plan_view import graph_dot, graph_mermaid, graph_text

    spec = load_for_reading(pipeline, settings)
    dag = Dag.from_spec(spec)
    if fmt is GraphFormat.mermaid:
        typer.echo(graph_mermaid(dag))
    elif fmt is GraphFormat.dot:
        typer.echo(graph_dot(dag, spec.name))
    elif fmt is GraphFormat.json:
        nodes = [{"name": n, "needs": list(dag.preds[n])} for n in dag.order]
        typer.echo(json.dumps({"pipeline": spec.name, "stages": nodes, "levels": dag.levels()}, indent=2))
    else:
        typer.echo(graph_text(dag))


@app.command("run")
@handle_errors
def run(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name (pipelines.d/NAME.yaml) or a YAML file.")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show the plan (levels, resolved commands); run and store nothing."),
    ] = False,
    max_parallel: Annotated[
        int | None,
        typer.Option(
            "--max-parallel", "-j", min=1, help="Stages at once (default: pipeline, then config, then 4)."
        ),
    ] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="Override a variable: --var NAME=VALUE (repeatable).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final run record as JSON (no live view).")
    ] = False,
    plain: Annotated[
        bool, typer.Option("--plain", help="One line per transition, even on a terminal.")
    ] = False,
) -> None:
    """Run a pipeline: stages start as soon as their dependencies finish, shown live.

    Exit codes: 0 succeeded, 1 failed or cancelled, 2 invalid input, 130 interrupted (Ctrl-C).

    Examples:

      orchestrate pipeline run ci

      orchestrate pipeline run ci --dry-run

      orchestrate pipeline run cd --max-parallel 8 --var environment=prod

      orchestrate pipeline run ./other/pipeline.yaml --json
    """
    from orchestrate.services import runs

    overrides = runs.parse_vars(var or [])
    s = settings()
    if dry_run:
        _dry_run(pipeline, overrides, max_parallel, as_json)
        return
    started, store = runs.prepare(s, pipeline, overrides, max_parallel, os.environ)
    with _view(started.initial, as_json, plain) as view:
        result = runs.execute(started, store, view, s.root)
    if as_json:
        typer.echo(json.dumps(store.run_record(started.run_id), indent=2))
    if result.status is RunStatus.SUCCEEDED:
        return
    if result.status is RunStatus.CANCELLED and (result.reason or "").startswith("cancelled by SIG"):
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    raise typer.Exit(int(ExitCode.RUN_FAILED))


def _view(initial, as_json: bool, plain: bool):  # type: ignore[no-untyped-def]
    from orchestrate.ui.console import is_terminal, stdout_console
    from orchestrate.ui.reporters import LiveReporter, PlainReporter, StateTracker

    if as_json:
        return StateTracker(initial)
    if plain or not is_terminal():
        return PlainReporter(sys.stdout, initial)
    return LiveReporter(stdout_console(), initial)


def _dry_run(ref: str, overrides: dict[str, str], max_parallel: int | None, as_json: bool) -> None:
    from orchestrate.services.definitions import check_runnable, load_for_reading
    from orchestrate.services.plan import make_plan
    from orchestrate.services.runs import merge_variables
    from orchestrate.settings import max_parallel_for
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.plan_view import plan_view

    s = settings()
    spec = load_for_reading(ref, settings)
    check_runnable(spec)
    variables = merge_variables(spec, overrides)
    plan = make_plan(
        spec,
        variables,
        max_parallel_for(max_parallel, s, spec.max_parallel),
        spec.default_timeout or s.default_timeout,
    )
    if as_json:
        typer.echo(json.dumps(plan.to_dict(), indent=2))
    else:
        stdout_console().print(plan_view(plan))
