"""``orchestrate db upgrade|current``: the store's schema revision (alembic migrations, issue 13)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings

app = typer.Typer(
    help=(
        "The store's schema: which migration it is at, and upgrading it. Opening a store "
        "upgrades it too; these commands do it, or show it, on purpose.\n\n"
        "Example:\n\n  orchestrate db current && orchestrate db upgrade"
    ),
    no_args_is_help=True,
    add_completion=False,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _where(location: object) -> str:
    if isinstance(location, str):
        from orchestrate.store.pg import plain_url

        # No password in the output: user@host:port/db.
        rest = plain_url(location).split("://", 1)[1]
        credentials, at, host = rest.rpartition("@")
        return f"postgresql://{credentials.split(':', 1)[0]}{at}{host}"
    return str(location)


@app.command("upgrade")
@handle_errors
def upgrade(as_json: AsJson = False) -> None:
    """Apply the pending migrations to the store (the SQLite file, or ORCHESTRATE_DATABASE_URL).

    A store that does not exist yet is created at the newest revision. Safe to run while
    other commands use the store: the upgrade holds the store's write lock and commits whole.

    Examples:

      orchestrate db upgrade

      ORCHESTRATE_DATABASE_URL=postgresql+psycopg://ci@db/orchestrate orchestrate db upgrade
    """
    from orchestrate.store import migrate

    location = settings().store_location
    before, after = migrate.upgrade(location)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "store": _where(location),
                    "from": before.revision,
                    "to": after.revision,
                    "head": migrate.HEAD,
                },
                indent=2,
            )
        )
        return
    if not before.exists:
        typer.echo(f"created {_where(location)} at {after.describe()} (head)")
    elif before.revision == after.revision:
        typer.echo(f"{_where(location)} is already at {after.describe()} (head)")
    else:
        typer.echo(f"upgraded {_where(location)} from {before.describe()} to {after.describe()} (head)")


@app.command("current")
@handle_errors
def current(as_json: AsJson = False) -> None:
    """Print the store's schema revision and whether it is the newest this orchestrate knows.

    Reads only: nothing is created or upgraded.

    Examples:

      orchestrate db current

      orchestrate db current --json
    """
    from orchestrate.store import migrate

    location = settings().store_location
    state = migrate.current(location)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "store": _where(location),
                    "exists": state.exists,
                    "revision": state.revision,
                    "legacy_version": state.legacy,
                    "head": migrate.HEAD,
                    "is_head": state.is_head,
                },
                indent=2,
            )
        )
        return
    if not state.exists:
        typer.echo(f"{_where(location)}: no store yet (head is {migrate.HEAD}); any command creates it")
    elif state.revision is None and state.legacy == migrate.HEAD_NUMBER:
        typer.echo(
            f"{_where(location)}: {state.describe()}, the tables of {migrate.HEAD}: "
            f"orchestrate db upgrade records it as {migrate.HEAD}"
        )
    elif state.is_head:
        typer.echo(f"{_where(location)}: revision {state.revision} (head)")
    elif state.revision is not None and int(state.revision) > migrate.HEAD_NUMBER:
        typer.echo(
            f"{_where(location)}: revision {state.revision}, newer than this orchestrate knows "
            f"({migrate.HEAD}): upgrade orchestrate"
        )
    else:
        typer.echo(
            f"{_where(location)}: {state.describe()}, not the head ({migrate.HEAD}): "
            "run orchestrate db upgrade (or any command upgrades it)"
        )
