"""``orchestrate pipeline create|list|show|update|delete|enable|disable|init|templates``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.cli.pipeline import app
from orchestrate.domain.status import ExitCode

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Name = Annotated[str, typer.Argument(help="Pipeline name.")]


def _store():  # type: ignore[no-untyped-def]
    from orchestrate.store import open_store

    s = settings()
    return s, open_store(s.store_location)


@app.command("create")
@handle_errors
def create(file: Annotated[Path, typer.Argument(help="A pipeline YAML file to add.")]) -> None:
    """Validate FILE, copy it into pipelines.d/NAME.yaml and register it as version 1.

    Example:

      orchestrate pipeline create ~/drafts/nightly.yaml
    """
    from orchestrate.services import registry

    s, store = _store()
    spec, version, target = registry.create(s, store, file)
    typer.echo(f"created pipeline {spec.name} (version {version}) in {target.relative_to(s.root)}")


@app.command("list")
@handle_errors
def list_(
    stale: Annotated[
        bool,
        typer.Option("--stale", help="Only pipelines with a stale run (running, no update for stale_after)."),
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Redraw until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between redraws with --watch.")
    ] = 2.0,
    as_json: Json = False,
) -> None:
    """Every pipeline: enabled, version, triggers, last run, success rate; then unfinished agent pipelines.

    Runs are of two kinds: executed (by `pipeline run`) and reported (by an agent, with
    `orchestrate report`). A running one with no update for `stale_after` (6h) is marked
    stale. Files edited by hand in pipelines.d/ are picked up here (a new version); an
    invalid edit is reported with its file and line, and the last valid version stays
    runnable with `pipeline run NAME --version N`.

    Examples:

      orchestrate pipeline list

      orchestrate pipeline list --stale

      orchestrate pipeline list --watch

      orchestrate pipeline list --json
    """
    from orchestrate.services import freshness, registry

    s, store = _store()

    def gather():  # type: ignore[no-untyped-def]
        rows = registry.sync(s, store)
        seen = freshness.overview(s, store)
        reported = list(seen.reported)
        if stale:
            rows = [r for r in rows if seen.stale_runs.get(r.name)]
            reported = [p for p in reported if seen.reported_stale(p)]
        return rows, seen, reported

    if as_json:
        rows, seen, reported = gather()
        from orchestrate.services.records import listed_json, reported_listed_json

        listed = [listed_json(r, seen) for r in rows]
        listed += [reported_listed_json(p, seen) for p in reported]
        typer.echo(json.dumps(listed, indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.observe_view import watch as watch_live
    from orchestrate.ui.registry_view import overview_view

    def frame():  # type: ignore[no-untyped-def]
        rows, seen, reported = gather()
        return overview_view(rows, seen, reported, stale_only=stale)

    if watch:
        watch_live(stdout_console(), frame, interval)
    else:
        stdout_console().print(frame())


@app.command("show")
@handle_errors
def show(
    name: Name,
    version: Annotated[int | None, typer.Option("--version", help="Show stored version N.")] = None,
    as_json: Json = False,
) -> None:
    """The definition (highlighted YAML) of a pipeline version, with a graph summary.

    Examples:

      orchestrate pipeline show ci

      orchestrate pipeline show ci --version 2
    """
    from orchestrate.graph import Dag
    from orchestrate.services import registry

    s, store = _store()
    info, spec = registry.show(s, store, name, version)
    count = len(store.versions(name))
    if as_json:
        dag = Dag.from_spec(spec)
        typer.echo(
            json.dumps(
                {
                    "name": spec.name,
                    "version": info.version,
                    "versions": count,
                    "path": info.path,
                    "digest": info.digest,
                    "text": info.text,
                    "stages": [{"name": n, "needs": list(dag.preds[n])} for n in dag.order],
                    "levels": dag.levels(),
                },
                indent=2,
            )
        )
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.registry_view import pipeline_detail

    stdout_console().print(pipeline_detail(info, spec, count))


@app.command("update")
@handle_errors
def update(name: Name, file: Annotated[Path, typer.Argument(help="The new definition.")]) -> None:
    """Validate FILE and make it NAME's definition: a new version. Runs in flight keep theirs.

    Example:

      orchestrate pipeline update ci ci-v2.yaml
    """
    from orchestrate.services import registry

    s, store = _store()
    spec, version, changed = registry.update(s, store, name, file)
    typer.echo(
        f"updated {spec.name}: version {version}" if changed else f"{spec.name} unchanged (version {version})"
    )


@app.command("delete")
@handle_errors
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a pipeline's file and registration; refused while it has an active run. History stays.

    Example:

      orchestrate pipeline delete old-nightly --yes
    """
    from orchestrate.domain.errors import UsageError
    from orchestrate.services import registry

    s, store = _store()
    registry.require(s, store, name)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to delete {name} without confirmation",
                hint=f"pass --yes: orchestrate pipeline delete {name} --yes",
            )
        if not typer.confirm(f"delete pipeline {name}? its runs stay readable", default=False):
            raise typer.Exit(int(ExitCode.INVALID_INPUT))
    path = registry.delete(s, store, name)
    where = f" ({path.relative_to(s.root)} removed)" if path else ""
    typer.echo(f"deleted pipeline {name}{where}; its history stays: orchestrate pipeline history {name}")


@app.command("enable")
@handle_errors
def enable(name: Name) -> None:
    """Let triggers, schedules and manual runs start the pipeline again.

    Example:

      orchestrate pipeline enable nightly
    """
    from orchestrate.services import registry

    s, store = _store()
    registry.set_enabled(s, store, name, True)
    typer.echo(f"{name} enabled")


@app.command("disable")
@handle_errors
def disable(name: Name) -> None:
    """Stop triggers and schedules from starting the pipeline; manual runs need --force.

    Example:

      orchestrate pipeline disable nightly
    """
    from orchestrate.services import registry

    s, store = _store()
    registry.set_enabled(s, store, name, False)
    typer.echo(f"{name} disabled")


@app.command("templates")
@handle_errors
def templates(as_json: Json = False) -> None:
    """The built-in templates, with one line each.

    Example:

      orchestrate pipeline templates
    """
    from orchestrate.services import registry

    items = registry.templates()
    if as_json:
        typer.echo(json.dumps([{"name": t.name, "description": t.description} for t in items], indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.registry_view import template_table

    stdout_console().print(template_table(items))


@app.command("init")
@handle_errors
def init(
    template: Annotated[str, typer.Argument(help="Template name (see: orchestrate pipeline templates).")],
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the new pipeline (default: the template's).")
    ] = None,
) -> None:
    """Copy a built-in template into pipelines.d/ to adapt (its header says how).

    Examples:

      orchestrate pipeline init ci

      orchestrate pipeline init cd --name deploy-web
    """
    from orchestrate.services import registry

    s = settings()
    target = registry.init_template(s, template, name)
    typer.echo(
        f"created {target.relative_to(s.root)} from template {template}; edit it, then: orchestrate pipeline run {target.stem}"
    )
