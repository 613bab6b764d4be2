"""Creating and upgrading the PostgreSQL schema (the SQLite file's is in ``db.py``).

The version lives in a one-row table, ``orchestrate_schema``, read on every open: one
SELECT when the schema is current. Otherwise the DDL compiled from ``tables.py`` for
PostgreSQL runs under a transaction advisory lock, so two processes opening a fresh
database at once cannot both create it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrate.domain.errors import WorkspaceError
from orchestrate.store.db import SCHEMA_VERSION

if TYPE_CHECKING:
    from orchestrate.store.pg import Connection, PgDatabase

SCHEMA_LOCK_KEY = 0x6F72_6369

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS orchestrate_schema (version integer NOT NULL)"


def schema_ddl_pg() -> list[str]:
    """CREATE TABLE / CREATE INDEX statements compiled from the SQLModel tables for PostgreSQL."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable
    from sqlmodel import SQLModel

    from orchestrate.store import tables

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in tables.TABLE_NAMES:
            continue
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))
    return statements


def _version(conn: Connection) -> int:
    exists = conn.execute("SELECT to_regclass('orchestrate_schema')", None).fetchone()
    if not exists or exists[0] is None:
        return 0
    row = conn.execute("SELECT version FROM orchestrate_schema", None).fetchone()
    return int(row[0]) if row else 0


def ensure_schema_pg(db: PgDatabase) -> None:
    from orchestrate.store.pg import FUNCTIONS

    conn = db.conn
    if _version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN", None)
    try:
        conn.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})", None)
        current = _version(conn)
        if current > SCHEMA_VERSION:
            raise WorkspaceError(
                f"the PostgreSQL store has schema version {current}, newer than this orchestrate knows "
                f"({SCHEMA_VERSION})",
                hint="upgrade orchestrate (pip install -U orchestrate)",
            )
        if current < SCHEMA_VERSION:
            for statement in FUNCTIONS:
                conn.execute(statement, None)
            # Every version so far only adds tables and indexes: IF NOT EXISTS brings any
            # older schema up to date.
            for statement in schema_ddl_pg():
                conn.execute(statement, None)
            conn.execute(VERSION_TABLE, None)
            conn.execute("DELETE FROM orchestrate_schema", None)
            conn.execute(f"INSERT INTO orchestrate_schema (version) VALUES ({SCHEMA_VERSION})", None)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK", None)
        raise
    conn.execute("COMMIT", None)
