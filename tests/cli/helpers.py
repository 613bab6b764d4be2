from __future__ import annotations

import os
import sqlite3
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
