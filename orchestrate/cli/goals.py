"""``orchestrate goal add|list|show|link|unlink|remove``: goals whose progress comes from the store."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from orchestrate.cli.common import handle_errors, settings

app = typer.Typer(
    help="Goals measured from the runs of linked pipelines: progress, on-track/behind/stalled.\n\n"
    "Example:\n\n  orchestrate goal add ship-specs --metric succeeded_runs --target 10 --label specs --by 2026-06-30",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The goal's name.")]
Pipelines = Annotated[
    list[str] | None, typer.Option("--pipeline", help="Count runs of this pipeline (repeatable).")
]
Labels = Annotated[
    list[str] | None, typer.Option("--label", help="Count runs of pipelines with this label (repeatable).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _progress(name: str | None) -> list[Any]:
    from orchestrate.review import goals
    from orchestrate.review.config import review_config
    from orchestrate.store import open_store

    s = settings()
    return goals.all_progress(s, open_store(s.store_location), review_config(s).goal_window, name=name)


@app.command("add")
@handle_errors
def add(
    name: Name,
    metric: Annotated[
        str, typer.Option("--metric", help="succeeded_runs, success_rate, p95_duration or cost.")
    ],
    target: Annotated[
        str, typer.Option("--target", help="10 (runs), 90% (rate), 10m (P95 duration), 0.50 (USD per run).")
    ],
    pipeline: Pipelines = None,
    label: Labels = None,
    by: Annotated[str | None, typer.Option("--by", help="Deadline: YYYY-MM-DD (end of that day).")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Count runs finished from this date (default: now).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Add a goal. Without --pipeline or --label it measures every pipeline.

    Examples:

      orchestrate goal add ship-specs --metric succeeded_runs --target 10 --label specs --by 2026-06-30

      orchestrate goal add ci-green --metric success_rate --target 95% --pipeline ci --since 2026-05-01

      orchestrate goal add fast-deploy --metric p95_duration --target 10m --pipeline deploy
    """
    from orchestrate.review import goals
    from orchestrate.store import open_store

    s = settings()
    with open_store(s.store_location) as store:
        goals.add(s, store, name, metric, target, pipeline or [], label or [], by, since)
        _warn_labels(goals.unknown_labels(s, store, label or []))
    (item,) = _progress(name)
    if as_json:
        _echo(goals.to_json(item))
        return
    typer.echo(f"added goal {name}; progress: orchestrate goal show {name}")


@app.command("list")
@handle_errors
def list_(as_json: Json = False) -> None:
    """Every goal with a progress bar and its status: met, on-track, behind, stalled or missed.

    Examples:

      orchestrate goal list

      orchestrate goal list --json | jq '.[] | select(.status == "stalled")'
    """
    from orchestrate.review import goals

    items = _progress(None)
    if as_json:
        _echo([goals.to_json(p) for p in items])
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.review_view import goals_table

    stdout_console().print(goals_table(items))


@app.command("show")
@handle_errors
def show(name: Name, as_json: Json = False) -> None:
    """One goal: its value now and a window ago, why it has its status, and the runs behind it.

    Example:

      orchestrate goal show ship-specs
    """
    from orchestrate.review import goals

    (item,) = _progress(name)
    if as_json:
        _echo(goals.to_json(item))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.review_view import goal_detail

    stdout_console().print(goal_detail(item, time.time()))


@app.command("link")
@handle_errors
def link(name: Name, pipeline: Pipelines = None, label: Labels = None, as_json: Json = False) -> None:
    """Attach pipelines (by name) or labels (every pipeline whose definition has `labels: [L]`) to a goal.

    Examples:

      orchestrate goal link ship-specs --pipeline write-spec

      orchestrate goal link ship-specs --label specs --label docs
    """
    _link(name, pipeline or [], label or [], remove=False, as_json=as_json)


@app.command("unlink")
@handle_errors
def unlink(name: Name, pipeline: Pipelines = None, label: Labels = None, as_json: Json = False) -> None:
    """Detach pipelines or labels from a goal (with no link left, it measures every pipeline).

    Example:

      orchestrate goal unlink ship-specs --label docs
    """
    _link(name, pipeline or [], label or [], remove=True, as_json=as_json)


def _warn_labels(unknown: list[str]) -> None:
    for label in unknown:
        typer.echo(
            f'warning: --label "{label}": no pipeline has this label yet; the goal counts none of its runs '
            "until one does (labels: [...] in a pipeline file)",
            err=True,
        )


def _link(name: str, pipelines: list[str], labels: list[str], *, remove: bool, as_json: bool) -> None:
    from orchestrate.review import goals
    from orchestrate.store import open_store

    s = settings()
    with open_store(s.store_location) as store:
        goal = goals.link(s, store, name, pipelines, labels, remove=remove)
        if not remove:
            _warn_labels(goals.unknown_labels(s, store, labels))
    if as_json:
        (item,) = _progress(name)
        _echo(goals.to_json(item))
        return
    shown = ", ".join(f"{k.value}:{v}" for k, v in goal.links) or "none (every pipeline)"
    typer.echo(f"goal {name}: links {shown}")


@app.command("remove")
@handle_errors
def remove(name: Name) -> None:
    """Delete a goal and its links (the runs it measured are untouched).

    Example:

      orchestrate goal remove ship-specs
    """
    from orchestrate.store import open_store

    s = settings()
    open_store(s.store_location).review().remove_goal(name)
    typer.echo(f"removed goal {name}")
