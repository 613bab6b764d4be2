from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from orchestrate.cli.app import app


def invoke(*args: str) -> Any:
    """Run the CLI in-process, as a user would type it."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def rows(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()
