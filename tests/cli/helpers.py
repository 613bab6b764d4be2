from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from orchestrate.cli.app import app


def invoke(*args: str) -> Any:
    """Run the CLI in-process, as a user would type it."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def rows(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of the test's store: the SQLite file ``db``, or its PostgreSQL database in that pass."""
    url = os.environ.get("ORCHESTRATE_DATABASE_URL", "")
    if url.startswith("postgres") and db.name == "orchestrate.db":
        from orchestrate.store.pg import connect

        conn = connect(url)
        try:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def store_at(workspace: Path) -> Any:
    """The workspace's store as its commands see it: orchestrate.db, or the PostgreSQL pass's database."""
    from orchestrate.store import open_store

    return open_store(os.environ.get("ORCHESTRATE_DATABASE_URL") or workspace / "orchestrate.db")


@contextmanager
def raw_store(db: Path) -> Iterator[Any]:
    """A connection straight to the test's store, foreign keys off, committed at the end.

    For building histories row by row: ``conn.execute(sql, params)`` with ``?`` placeholders
    works on the SQLite file and, in the PostgreSQL pass, on the test's database.
    """
    url = os.environ.get("ORCHESTRATE_DATABASE_URL", "")
    if url.startswith("postgres") and db.name == "orchestrate.db":
        from orchestrate.store import open_store
        from orchestrate.store.pg import connect

        open_store(url).close()  # the schema
        conn = connect(url)
        try:
            conn.execute("SET session_replication_role = replica", None)  # no foreign-key checks
            conn.execute("BEGIN", None)
            yield conn
            conn.execute("COMMIT", None)
        finally:
            conn.close()
        return
    with sqlite3.connect(db) as lite:
        lite.execute("PRAGMA foreign_keys = OFF")
        yield lite
