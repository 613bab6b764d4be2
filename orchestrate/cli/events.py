"""``orchestrate event emit|list``: events that start pipelines (DESIGN §9)."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings

app = typer.Typer(
    help="Emit events that start pipelines, and see what they started.\n\n"
    "Example:\n\n  orchestrate event emit pull_request.merged --branch main --changed-file docs/index.md",
    no_args_is_help=True,
)


@app.command("emit")
@handle_errors
def emit(
    name: Annotated[str, typer.Argument(help="Event name, e.g. pull_request.merged.")],
    payload: Annotated[
        str | None, typer.Option("--payload", help="JSON object from a file, or - for stdin (≤ 1 MB).")
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Set a payload field: --set pr.number=42 (repeatable).")
    ] = None,
    branch: Annotated[
        str | None, typer.Option("--branch", help="The branch (else the payload's branch or ref).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="A label on the change (repeatable).")
    ] = None,
    changed_file: Annotated[
        list[str] | None, typer.Option("--changed-file", help="A file the change touched (repeatable).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would start; start nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Record an event and start every enabled pipeline whose trigger matches it.

    Matching runs start in the background; their ids are printed (watch them with
    `orchestrate pipeline status RUN --watch`).

    Examples:

      orchestrate event emit pull_request.merged --branch main --label hotfix

      orchestrate event emit deploy.requested --payload event.json --set environment=prod

      gh api repos/o/r/pulls/7 | orchestrate event emit pull_request.merged --payload - --dry-run
    """
    from orchestrate.store import open_store
    from orchestrate.triggers import events

    s = settings()
    body = events.apply_sets(events.read_payload(payload), sets or [])
    event = events.build_event(
        name,
        body,
        branch=branch,
        labels=label or [],
        changed_files=changed_file or [],
        user=s.user,
        dry_run=dry_run,
    )
    results = events.emit(s, open_store(s.store_location), event)
    if not dry_run:
        from orchestrate.worker.wake import poke

        poke(s.config, os.environ)  # best-effort: a worker reacts at once (queued runs, concurrency)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "event": event.id,
                    "pipelines": [
                        {
                            "pipeline": m.pipeline,
                            "matched": m.trigger is not None,
                            "reason": m.reason,
                            "run": run,
                        }
                        for m, run in results
                    ],
                },
                indent=2,
            )
        )
        return
    started = [(m, run) for m, run in results if run]
    verb = "would start" if dry_run else "started"
    typer.echo(
        f"event {event.id} ({name}): {verb} {sum(1 for m, _ in results if m.trigger and m.enabled) if dry_run else len(started)} run(s)"
    )
    for m, run in results:
        if run:
            note = "" if m.reason.startswith("matched") else f" ({m.reason})"
            typer.echo(f"  {m.pipeline}: run {run}{note}")
        elif m.trigger is not None:
            typer.echo(f"  {m.pipeline}: {'would start' if dry_run and m.enabled else m.reason}")
        else:
            typer.echo(f"  {m.pipeline}: not triggered ({m.reason})")


@app.command("list")
@handle_errors
def list_(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many events, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Events, newest first, with the runs each one started.

    Example:

      orchestrate event list --limit 5
    """
    from orchestrate.store import open_store

    store = open_store(settings().store_location)
    rows = [(e, store.runs_of_event(e.id)) for e in store.events(limit)]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "name": e.name,
                        "branch": e.branch,
                        "labels": list(e.labels),
                        "changed_files": None if e.changed_files is None else list(e.changed_files),
                        "created_at": e.created_at,
                        "emitted_by": e.emitted_by,
                        "dry_run": e.dry_run,
                        "payload": e.payload,
                        "runs": [
                            {"id": r.id, "pipeline": r.pipeline, "status": r.status.value} for r in runs
                        ],
                    }
                    for e, runs in rows
                ],
                indent=2,
            )
        )
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.registry_view import event_table

    stdout_console().print(event_table(rows, time.time()))
