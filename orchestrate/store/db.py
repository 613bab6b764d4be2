"""Connecting to the SQLite file, and creating or upgrading its schema.

Starting a run must stay fast, and importing SQLModel costs more than the whole
budget, so this module uses only ``sqlite3``. The schema's revision (alembic's, see
``migrate.py``) is mirrored in ``PRAGMA user_version`` as its number: when it equals
``SCHEMA_VERSION`` (every open but the first after an install or upgrade) nothing else
is imported. A new file is created from ``tables.py`` on this same connection inside
one ``BEGIN IMMEDIATE`` transaction together with alembic's stamp and the new
user_version, so two processes opening a fresh file at once cannot both create it, and
a crash leaves either no schema or the whole one. An older file is upgraded by alembic
(``migrate.upgrade_sqlite``), under the same write lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from orchestrate.domain.errors import WorkspaceError
from orchestrate.store.migrations import HEAD

T = TypeVar("T")

# The number of the head alembic revision (orchestrate/store/migrations/versions).
SCHEMA_VERSION = int(HEAD)

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
        fresh = (
            current == 0
            and not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' LIMIT 1"
            ).fetchone()
        )
        if fresh:
            create_schema(conn)
            stamp_head(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if fresh or current == SCHEMA_VERSION:
        conn.execute("COMMIT")
        return
    # An older schema: alembic upgrades it on a connection of its own, which takes the
    # write lock again (and checks the version again: another process may be first).
    conn.execute("ROLLBACK")
    from orchestrate.store.migrate import upgrade_sqlite

    upgrade_sqlite(path)


def stamp_head(conn: sqlite3.Connection) -> None:
    """Record a schema made from tables.py as the head revision (alembic's ``stamp head``)."""
    from orchestrate.store.migrate import CREATE_VERSION_TABLE, STAMP_HEAD

    conn.execute(CREATE_VERSION_TABLE)
    conn.execute(STAMP_HEAD)
    # PRAGMA cannot take a bound parameter; the value is our own int.
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


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

    # Appended to a claim's SELECT (``claim()``): nothing here, BEGIN IMMEDIATE already excludes
    # every other writer; PostgreSQL's adapter locks the selected rows instead (store/pg.py).
    ROW_LOCK = ""

    @contextmanager
    def claim(self) -> Iterator[sqlite3.Connection]:
        """A transaction that claims rows (the worker's queue, orphaned runs): ``write()`` here.

        On PostgreSQL the same call skips the global write lock and relies on
        ``SELECT ... FOR UPDATE SKIP LOCKED`` (``ROW_LOCK``), so several workers claim at once.
        """
        with self.write() as conn:
            yield conn

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


def transact(db: Any, write: bool, body: Callable[[Any], T]) -> T:
    """``body(conn)`` in one write (or read) transaction of ``db`` (SQLite or PostgreSQL)."""
    with db.write() if write else db.read() as conn:
        return body(conn)
