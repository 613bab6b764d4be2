"""Connecting to the SQLite file, and creating or migrating its schema.

Starting a run must stay fast, and importing SQLModel costs more than the whole
budget, so this module uses only ``sqlite3``. The schema version lives in
``PRAGMA user_version``: when it equals ``SCHEMA_VERSION`` (every open but the
first after an install or upgrade) nothing else is imported. Otherwise
``tables.py`` is imported and compiled to DDL, which runs on this same connection
inside one ``BEGIN IMMEDIATE`` transaction together with the new user_version, so
two processes opening a fresh file at once cannot both create it, and a crash
leaves either the old schema or the new one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrate.domain.errors import WorkspaceError

SCHEMA_VERSION = 2

# Upgrade steps: MIGRATIONS[n] turns a version-n schema into version n+1 (ALTER TABLE
# ..., data fixes). Each runs inside the migration transaction. A fresh file skips
# them all: it is created directly at SCHEMA_VERSION from tables.py.
# 1 → 2 only adds tables and indexes (experiments, budgets, goals, review, worker,
# schedules), which create_schema's IF NOT EXISTS statements add to an existing file.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: lambda conn: create_schema(conn)}

BUSY_TIMEOUT_MS = 10_000


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are begun explicitly (see ``write``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        # One Store may be used from the engine's event-loop thread and a worker
        # thread (heartbeats); every use of the connection holds the Store's lock.
        check_same_thread=False,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer nor each other. It is a property of the
        # file, so this is a no-op after the first open.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise WorkspaceError(
                f"{path}: SQLite cannot use WAL journal mode here (got {mode!r})",
                hint="put the workspace on a local file system",
            )
        # NORMAL in WAL mode: a commit survives a process crash, and only a power loss
        # may roll back the last transactions; FULL would fsync every transition.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        ensure_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file to SCHEMA_VERSION; cheap (one PRAGMA) when it is already there."""
    if user_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = user_version(conn)  # again, now that we hold the write lock
        if current > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{path} has schema version {current}, newer than this orchestrate knows ({SCHEMA_VERSION})",
                hint="upgrade orchestrate (pip install -U orchestrate)",
            )
        if current == 0:
            create_schema(conn)
        else:
            for version in range(current, SCHEMA_VERSION):
                MIGRATIONS[version](conn)
        # PRAGMA cannot take a bound parameter; the value is our own int.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_ddl() -> list[str]:
    """CREATE TABLE / CREATE INDEX statements compiled from the SQLModel tables."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable
    from sqlmodel import SQLModel

    from orchestrate.store import tables

    dialect = sqlite.dialect()
    statements: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in tables.TABLE_NAMES:
            continue  # a table some other code registered on the shared metadata
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))
    return statements


def create_schema(conn: sqlite3.Connection) -> None:
    # IF NOT EXISTS: a file at user_version 0 may already hold some tables, e.g.
    # when an earlier creation was interrupted before this transaction existed.
    for statement in schema_ddl():
        conn.execute(statement)


class Database:
    """One sqlite3 connection and the lock that serialises its transactions.

    The lock matters because a sqlite3 connection has a single transaction: two
    threads interleaving statements would commit each other's half-done work.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction.

        BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout).
        A deferred transaction that reads and then writes would have to upgrade its
        lock, and SQLite fails such an upgrade at once with "database is locked"
        when another connection wrote in between, without calling the busy handler.
        """
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one consistent snapshot (WAL never blocks it)."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")
