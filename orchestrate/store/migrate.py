"""Bringing a store's schema to the head revision: alembic, for SQLite and PostgreSQL.

The revisions live in ``orchestrate/store/migrations/versions``; ``migrations.HEAD`` names
the newest. Opening a store checks its revision cheaply and imports nothing when it is
current (``db.ensure_schema``: one PRAGMA; ``ensure_schema_pg``: one SELECT). Otherwise:

* a store with no tables is created from ``tables.py`` and stamped at the head, as
  alembic advises for a new database: one transaction of CREATEs, no alembic import,
  and ``tests/store/test_migrations.py`` proves the revisions build the same schema;
* any other store is upgraded by alembic on a connection of its own that holds the
  store's write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so two
  processes cannot both migrate and the upgrade commits whole or not at all. Stores
  made before alembic (``user_version`` 1 or 2, or PostgreSQL's ``orchestrate_schema``
  table) have no ``alembic_version``: they are upgraded from the base, which is safe
  because revisions 0001 and 0002 create with IF NOT EXISTS, keeping what is there.

After an upgrade every table of ``tables.py`` must exist with all its columns, or the
transaction is rolled back and the error names what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import WorkspaceError
from orchestrate.store.migrations import HEAD

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection as SAConnection

    from orchestrate.store.pg import Connection, PgDatabase

HEAD_NUMBER = int(HEAD)
SCHEMA_LOCK_KEY = 0x6F72_6369
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# alembic's own version table, as ``alembic stamp`` creates it.
CREATE_VERSION_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)
STAMP_HEAD = f"INSERT INTO alembic_version (version_num) VALUES ('{HEAD}')"
SELECT_REVISION = "SELECT version_num FROM alembic_version"
LEGACY_PG_TABLE = "orchestrate_schema"  # the version table before alembic (issue 13, in development)

UPGRADE_HINT = "upgrade orchestrate (pip install -U orchestrate)"


@dataclass(frozen=True)
class Revision:
    """Where a store's schema stands."""

    revision: str | None  # alembic's; None: no alembic_version (new, or made before alembic)
    legacy: int | None = None  # the pre-alembic schema version, when there is no revision
    exists: bool = True  # False: no store yet (the SQLite file is missing, or an empty database)

    @property
    def is_head(self) -> bool:
        return self.revision == HEAD

    def describe(self) -> str:
        if not self.exists:
            return "no store yet"
        if self.revision is not None:
            return f"revision {self.revision}"
        if self.legacy:
            return f"schema version {self.legacy} (made before alembic)"
        return "no schema"


def newer_error(where: str, found: str) -> WorkspaceError:
    return WorkspaceError(
        f"{where} has schema version {found}, newer than this orchestrate knows ({HEAD})",
        hint=UPGRADE_HINT,
    )


def alembic_config(connection: SAConnection | str | None = None) -> Config:
    """alembic's configuration for the store: a locked connection, or a URL for alembic's own commands."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if isinstance(connection, str):
        config.set_main_option("sqlalchemy.url", connection.replace("%", "%%"))
    elif connection is not None:
        config.attributes["connection"] = connection
    return config


def _alembic_upgrade(connection: SAConnection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def _check_tables(connection: SAConnection, where: str) -> None:
    """Every table and column of tables.py is there (a store made before alembic may differ)."""
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    from orchestrate.store import tables

    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in tables.TABLE_NAMES:
            continue
        if table.name not in present:
            raise WorkspaceError(f"{where}: table {table.name} is missing after the upgrade")
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        missing = sorted({c.name for c in table.columns} - columns)
        if missing:
            raise WorkspaceError(
                f"{where}: table {table.name} lacks column(s) {', '.join(missing)} after the upgrade",
                hint="this store was made by a development version; recreate it or add the columns",
            )


# -- SQLite -----------------------------------------------------------------------------


def sqlite_revision(conn: Any) -> str | None:
    """alembic's revision of a SQLite connection (sqlite3 or SQLAlchemy's), None without the table."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if not has_table:
        return None
    row = conn.execute(SELECT_REVISION).fetchone()
    return None if row is None else str(row[0])


def upgrade_sqlite(path: Path, adopt: bool = False) -> None:
    """Run the pending revisions on the SQLite file, in one BEGIN IMMEDIATE transaction.

    ``adopt``: also a file at the head's user_version that has no ``alembic_version`` (made
    by this development before alembic, with the same tables): check it and stamp it.
    """
    from sqlalchemy import create_engine, event, pool

    from orchestrate.store.db import BUSY_TIMEOUT_MS

    engine = create_engine(
        f"sqlite:///{path}", poolclass=pool.NullPool, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}
    )

    # pysqlite's own transaction handling would begin lazily, DEFERRED: take the write
    # lock up front instead, as every write of the store does (SQLAlchemy's recipe).
    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: SAConnection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.connect() as connection, connection.begin():
            version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
            if version > HEAD_NUMBER:
                raise newer_error(str(path), str(version))
            revision = sqlite_revision(connection.connection.driver_connection)
            if version == HEAD_NUMBER and (revision is not None or not adopt):
                return  # another process upgraded it while we waited for the lock
            if revision is not None and int(revision) > HEAD_NUMBER:
                raise newer_error(str(path), revision)
            _alembic_upgrade(connection)
            _check_tables(connection, str(path))
            connection.exec_driver_sql(f"PRAGMA user_version = {HEAD_NUMBER}")
    finally:
        engine.dispose()


def sqlite_current(path: Path) -> Revision:
    """The file's revision, read without creating, locking or upgrading anything."""
    import sqlite3

    if not path.exists():
        return Revision(None, exists=False)
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        revision = sqlite_revision(conn)
    finally:
        conn.close()
    if revision is None and version > HEAD_NUMBER:
        return Revision(f"{version:04d}")
    return Revision(revision, legacy=None if revision is not None else version or None)


# -- PostgreSQL -------------------------------------------------------------------------


def _pg_table_exists(conn: Connection, name: str) -> bool:
    row = conn.execute(f"SELECT to_regclass('{name}')", None).fetchone()
    return bool(row and row[0] is not None)


def _pg_revision(conn: Connection) -> str | None:
    if not _pg_table_exists(conn, "alembic_version"):
        return None
    row = conn.execute(SELECT_REVISION, None).fetchone()
    return None if row is None else str(row[0])


def _pg_legacy(conn: Connection) -> int | None:
    if not _pg_table_exists(conn, LEGACY_PG_TABLE):
        return None
    row = conn.execute(f"SELECT version FROM {LEGACY_PG_TABLE}", None).fetchone()
    return int(row[0]) if row else None


def _pg_has_tables(conn: Connection) -> bool:
    names = ", ".join(f"'{name}'" for name in ("pipelines", "runs", "stages"))
    row = conn.execute(
        f"SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename IN ({names})",
        None,
    ).fetchone()
    return bool(row and row[0])


def ensure_schema_pg(db: PgDatabase) -> None:
    """Bring the PostgreSQL store to the head revision; one SELECT when it is there already."""
    import psycopg

    conn = db.conn
    try:
        row = conn.execute(SELECT_REVISION, None).fetchone()
        if row is not None and row[0] == HEAD:
            return
    except psycopg.errors.UndefinedTable:
        pass  # a new database, or one made before alembic
    conn.execute("BEGIN", None)
    try:
        conn.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})", None)
        revision = _pg_revision(conn)
        if revision == HEAD:
            conn.execute("COMMIT", None)
            return
        if revision is not None and int(revision) > HEAD_NUMBER:
            raise newer_error("the PostgreSQL store", revision)
        legacy = _pg_legacy(conn)
        if revision is None and legacy is None and not _pg_has_tables(conn):
            create_schema_pg(conn)
            conn.execute("COMMIT", None)
            return
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK", None)
        raise
    conn.execute("ROLLBACK", None)  # alembic upgrades on a connection of its own, under the same lock
    upgrade_pg(db.url)


def create_schema_pg(conn: Connection) -> None:
    """A new PostgreSQL store: functions, tables.py's DDL, stamped at the head."""
    from orchestrate.store.pg import FUNCTIONS

    for statement in FUNCTIONS:
        conn.execute(statement, None)
    for statement in schema_ddl_pg():
        conn.execute(statement, None)
    conn.execute(CREATE_VERSION_TABLE, None)
    conn.execute(STAMP_HEAD, None)


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


def upgrade_pg(url: str) -> None:
    """Run the pending revisions on the PostgreSQL store in one transaction, under the schema lock."""
    from sqlalchemy import create_engine, pool, text

    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(text(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"))
            revision = None
            if connection.execute(text("SELECT to_regclass('alembic_version')")).scalar() is not None:
                revision = connection.execute(text(SELECT_REVISION)).scalar()
            if revision == HEAD:
                return
            if revision is not None and int(revision) > HEAD_NUMBER:
                raise newer_error("the PostgreSQL store", str(revision))
            _alembic_upgrade(connection)
            _check_tables(connection, "the PostgreSQL store")
            connection.execute(text(f"DROP TABLE IF EXISTS {LEGACY_PG_TABLE}"))
    finally:
        engine.dispose()


def pg_current(url: str) -> Revision:
    """The PostgreSQL store's revision, read without creating or upgrading anything."""
    from orchestrate.store.pg import connect

    conn = connect(url)
    try:
        revision = _pg_revision(conn)
        legacy = None if revision is not None else _pg_legacy(conn)
        exists = revision is not None or legacy is not None or _pg_has_tables(conn)
    finally:
        conn.close()
    return Revision(revision, legacy=legacy, exists=exists)


# -- either store -----------------------------------------------------------------------


def current(location: Path | str) -> Revision:
    """Where the store at ``location`` (settings.store_location) stands, without touching it."""
    if isinstance(location, str):
        return pg_current(location)
    return sqlite_current(location)


def upgrade(location: Path | str) -> tuple[Revision, Revision]:
    """Create or upgrade the store at ``location`` to the head: (before, after)."""
    from orchestrate.store import open_store

    before = current(location)
    if before.revision is not None and before.revision != HEAD and int(before.revision) > HEAD_NUMBER:
        where = "the PostgreSQL store" if isinstance(location, str) else str(location)
        raise newer_error(where, before.revision)
    open_store(location).close()
    if isinstance(location, Path) and before.revision is None and before.legacy == HEAD_NUMBER:
        # Opening accepts it (one PRAGMA says it is current); an explicit upgrade records it.
        upgrade_sqlite(location, adopt=True)
    return before, current(location)
