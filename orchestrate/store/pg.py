"""PostgreSQL behind the same ``Database`` interface as the SQLite file (DESIGN §11).

``ORCHESTRATE_DATABASE_URL=postgresql+psycopg://user@host/db`` points every command at
a PostgreSQL server. The store's statements are written once, in the SQL both engines
share, with SQLite's ``?`` placeholders; this module runs them through psycopg:

* ``?`` becomes a psycopg placeholder, bound client-side (``ClientCursor``), so an
  untyped ``? IS NULL`` needs no server-side type inference;
* ``x IS ?`` (SQLite's null-safe equality) becomes ``x IS NOT DISTINCT FROM ?``,
  ``INSERT OR IGNORE`` becomes ``INSERT ... ON CONFLICT DO NOTHING``, and
  ``CAST(json_extract(...) AS INTEGER|REAL)`` a lenient number (SQLite casts junk to 0),
  ``LIMIT -1`` (no limit) ``LIMIT ALL``;
* SQLite's ``TOTAL()`` and ``SUM(condition)`` aggregates and ``json_extract()`` exist as
  SQL functions created with the schema (``FUNCTIONS``);
* ``BEGIN IMMEDIATE`` (SQLite's one-writer lock) becomes ``BEGIN`` plus a transaction
  advisory lock, so write transactions are serialised exactly as they are on SQLite;
  reads run in REPEATABLE READ, one consistent snapshot like a WAL read.

The translation is cached per statement text, so it costs a dict lookup per call.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from orchestrate.domain.errors import WorkspaceError

# What every write transaction NOTIFYs at commit (``listen`` waits for it).
CHANNEL = "orchestrate_store"

# Any fixed number: the key of the advisory lock every write transaction takes.
WRITE_LOCK_KEY = 0x6F72_6368  # "orch"

FUNCTIONS = (
    # SQLite's json_extract(doc, '$.a.b') for the paths the store uses.
    "CREATE OR REPLACE FUNCTION json_extract(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT (doc::jsonb) #>> string_to_array(substr(path, 3), '.') $$",
    # CAST(text AS INTEGER/REAL) as SQLite does it: a leading number, else 0; NULL stays NULL.
    "CREATE OR REPLACE FUNCTION orchestrate_number(value text) RETURNS double precision LANGUAGE sql "
    "IMMUTABLE AS $$ SELECT CASE WHEN value IS NULL THEN NULL "
    "ELSE coalesce(substring(value from '^\\s*([-+]?[0-9]*\\.?[0-9]+([eE][-+]?[0-9]+)?)')::double precision, 0) "
    "END $$",
    # SQLite's TOTAL(): a float sum that is 0.0, not NULL, over no rows; of numbers and of booleans.
    "CREATE OR REPLACE FUNCTION orchestrate_total_step(acc double precision, value double precision) "
    "RETURNS double precision LANGUAGE sql IMMUTABLE AS $$ SELECT acc + coalesce(value, 0) $$",
    "CREATE OR REPLACE FUNCTION orchestrate_total_step(acc double precision, value boolean) "
    "RETURNS double precision LANGUAGE sql IMMUTABLE AS $$ SELECT acc + CASE WHEN value THEN 1 ELSE 0 END $$",
    "CREATE OR REPLACE AGGREGATE total(double precision) "
    "(SFUNC = orchestrate_total_step, STYPE = double precision, INITCOND = '0')",
    "CREATE OR REPLACE AGGREGATE total(boolean) "
    "(SFUNC = orchestrate_total_step, STYPE = double precision, INITCOND = '0')",
    # SQLite's SUM(condition): counts the true ones; NULL over no rows, as SUM is.
    "CREATE OR REPLACE FUNCTION orchestrate_sum_step(acc bigint, value boolean) RETURNS bigint "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(acc, 0) + CASE WHEN value THEN 1 ELSE 0 END $$",
    "CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = orchestrate_sum_step, STYPE = bigint)",
)

_IS_PARAM = re.compile(r"\bIS \?")
_CAST_JSON = re.compile(r"CAST\((json_extract\([^()]*\)) AS (?:INTEGER|REAL)\)", re.I)
_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.I)


@lru_cache(maxsize=1024)
def translate(statement: str, has_params: bool = True) -> str:
    """The store's SQLite-flavoured statement in PostgreSQL's words (see the module docstring)."""
    text = statement.strip()
    if text.upper() == "BEGIN IMMEDIATE":
        return "BEGIN"
    text = _CAST_JSON.sub(r"orchestrate_number(\1)", text)
    if _OR_IGNORE.match(text):
        text = _OR_IGNORE.sub("INSERT INTO", text) + " ON CONFLICT DO NOTHING"
    text = _IS_PARAM.sub("IS NOT DISTINCT FROM ?", text)
    text = text.replace("LIMIT -1", "LIMIT ALL")  # SQLite's "no limit" (before an OFFSET)
    if has_params:
        text = text.replace("%", "%%").replace("?", "%s")
    return text


def plain_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy's spelling) as libpq takes it."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres")):
        raise WorkspaceError(f"ORCHESTRATE_DATABASE_URL: {url.split(':', 1)[0]} is not a PostgreSQL URL")
    return f"postgresql://{rest}"


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


class Row(tuple):  # type: ignore[type-arg]
    """A result row read by position or by column name, like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


class Cursor:
    """The part of ``sqlite3.Cursor`` the store uses, over a psycopg cursor."""

    def __init__(self, raw: Any, conn: Connection) -> None:
        self._raw = raw
        self._conn = conn
        self.row_factory: Any = None  # sqlite3.Row (or anything set): rows by name too

    def _wrap(self, row: Any) -> Any:
        if row is None or self.row_factory is None:
            return row
        names = {d.name: i for i, d in enumerate(self._raw.description or ())}
        return Row(row, names)

    def fetchone(self) -> Any:
        return self._wrap(self._raw.fetchone()) if self._raw.description else None

    def fetchall(self) -> list[Any]:
        if not self._raw.description:
            return []
        return [self._wrap(r) for r in self._raw.fetchall()]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    @property
    def lastrowid(self) -> int | None:
        """The id the last INSERT took from its table's sequence (``lastval()``)."""
        row = self._conn.raw.execute("SELECT lastval()").fetchone()
        return int(row[0]) if row else None


class Connection:
    """The part of ``sqlite3.Connection`` the store uses, over one psycopg connection."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> Cursor:
        cur = self.raw.cursor()
        if params is None:
            cur.execute(translate(statement, False))
        else:
            cur.execute(translate(statement), tuple(params))
        return Cursor(cur, self)

    def executemany(self, statement: str, rows: Any) -> Cursor:
        cur = self.raw.cursor()
        cur.executemany(translate(statement), [tuple(r) for r in rows])
        return Cursor(cur, self)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    def close(self) -> None:
        self.raw.close()


def connect(url: str) -> Connection:
    try:
        import psycopg
        from psycopg.types.numeric import FloatLoader
    except ImportError:  # pragma: no cover - psycopg is a dependency
        raise WorkspaceError(
            "ORCHESTRATE_DATABASE_URL names PostgreSQL but psycopg is not installed",
            hint="pip install 'psycopg[binary]'",
        ) from None
    try:
        raw = psycopg.connect(plain_url(url), autocommit=True, cursor_factory=psycopg.ClientCursor)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WorkspaceError(
            f"ORCHESTRATE_DATABASE_URL: cannot connect to PostgreSQL: {first}",
            hint="check the server is running and the URL (postgresql+psycopg://user@host:port/db)",
        ) from None
    # SUM over integers is NUMERIC: read it as a float, as SQLite gives it.
    raw.adapters.register_loader("numeric", FloatLoader)
    return Connection(raw)


class PgDatabase:
    """One psycopg connection and the lock that serialises its transactions (as ``Database``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = None  # no file: checkpoints and logs still live in the workspace
        self.conn = connect(url)
        self.lock = threading.Lock()
        from orchestrate.store.migrate import ensure_schema_pg

        ensure_schema_pg(self)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                # One writer at a time, as SQLite's BEGIN IMMEDIATE: the store's
                # read-then-write transactions (claims, status carried up) rely on it.
                self.conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
                # Delivered at commit to every LISTENer (the worker): the store changed, as
                # a write to the SQLite file wakes a watcher. Repeats in one transaction fold.
                self.conn.execute(f"NOTIFY {CHANNEL}", None)
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # Appended to a claim's SELECT: rows another worker is claiming are skipped, not waited for.
    ROW_LOCK = " FOR UPDATE SKIP LOCKED"

    @contextmanager
    def claim(self) -> Iterator[Connection]:
        """A write transaction that does NOT take the global write lock (issue 13, many workers).

        For statements that lock exactly the rows they change: the claim's SELECT ends with
        ``ROW_LOCK`` (``FOR UPDATE SKIP LOCKED``) and its UPDATEs touch only the rows it
        locked, re-checking their state (READ COMMITTED re-reads a row changed meanwhile).
        Workers claiming at once take different rows instead of queueing on one lock, and a
        claim never waits for the run processes' writes. Nothing else may write in it.
        """
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.lock:
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            try:
                yield self.conn
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")


def listen(url: str, stop: Any, on_change: Any, timeout: float = 1.0) -> None:
    """Call ``on_change()`` after each committed write to the store until ``stop`` is set.

    PostgreSQL's LISTEN/NOTIFY: the worker's wake-up on this store, as watching the file
    is on SQLite. ``stop`` is a ``threading.Event``; it is checked every ``timeout`` s.
    """
    import psycopg

    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        while not stop.is_set():
            for _note in conn.notifies(timeout=timeout, stop_after=1):
                on_change()
