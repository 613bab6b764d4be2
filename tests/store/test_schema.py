"""The raw SQL of the hot path and the SQLModel tables describe the same schema."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlmodel import SQLModel

from orchestrate.store import db, open_store, sql, tables
from tests.store.helpers import rows

STATEMENTS = {name: value for name, value in vars(sql).items() if name.isupper() and isinstance(value, str)}


def sqlmodel_columns() -> dict[str, set[str]]:
    return {
        table.name: {column.name for column in table.columns}
        for table in SQLModel.metadata.sorted_tables
        if table.name in tables.TABLE_NAMES
    }


def test_every_statement_names_only_sqlmodel_tables_and_columns(tmp_path: Path) -> None:
    # A schema built from SQLModel.metadata alone: a statement naming anything else fails to compile.
    conn = sqlite3.connect(tmp_path / "metadata.db")
    for statement in db.schema_ddl():
        conn.execute(statement)
    known = sqlmodel_columns()
    touched: list[tuple[int, str, str | None]] = []

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
        if action in (
            sqlite3.SQLITE_READ,
            sqlite3.SQLITE_UPDATE,
            sqlite3.SQLITE_INSERT,
            sqlite3.SQLITE_DELETE,
        ):
            assert arg1 is not None
            if not arg1.startswith("sqlite_"):
                touched.append((action, arg1, arg2 or None))
        return sqlite3.SQLITE_OK

    conn.set_authorizer(authorize)
    assert len(STATEMENTS) > 15
    for name, statement in STATEMENTS.items():
        touched.clear()
        conn.execute("EXPLAIN " + statement, [None] * statement.count("?"))  # compiles, runs nothing
        assert touched, name
        for action, table, column in touched:
            assert table in known, f"{name}: table {table} is not a SQLModel table"
            assert column is None or column in known[table], f"{name}: {table}.{column} is not in SQLModel"
            # run_events is append-only (only a future gc of whole runs may delete)
            if table == "run_events":
                assert action in (sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT), f"{name} changes run_events"


def test_the_store_modules_run_no_sql_of_their_own() -> None:
    # Everything goes through sql.py, which the test above checks.
    inline = re.compile(r"\.execute(many)?\(\s*f?[\"']")
    for module in ("writer.py", "reads.py", "store.py"):
        source = (Path(sql.__file__).parent / module).read_text()
        assert not inline.search(source), module


def test_the_created_file_has_exactly_the_sqlmodel_columns(tmp_path: Path) -> None:
    db_path = tmp_path / "orchestrate.db"
    open_store(db_path).close()
    on_disk = {
        table: {name for (_, name, *_rest) in rows(db_path, f"pragma table_info({table})")}
        for table in sqlmodel_columns()
    }
    assert on_disk == sqlmodel_columns()


def test_indexes_for_the_common_lookups(tmp_path: Path) -> None:
    db_path = tmp_path / "orchestrate.db"
    open_store(db_path).close()

    def plan(query: str) -> str:
        return " ".join(row[-1] for row in rows(db_path, "explain query plan " + query))

    # SEARCH, not SCAN, and no temporary b-tree for the ORDER BY
    for query, index in [
        ("select id from runs where pipeline = 'x' order by created_at desc", "ix_runs_pipeline_created_at"),
        ("select id from runs where status = 'running'", "ix_runs_status"),
        ("select name from stages where run_id = 'x' order by position", "ix_stages_run_position"),
        ("select payload from run_events where run_id = 'x' order by seq", "ix_run_events_run_seq"),
        ("select * from stage_attempts where run_id = 'x' order by stage, attempt", "PRIMARY KEY"),
    ]:
        assert plan(query).startswith("SEARCH") and index in plan(query), (query, plan(query))
        assert "TEMP B-TREE" not in plan(query), query
