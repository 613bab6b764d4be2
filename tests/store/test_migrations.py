"""Versioned schema migrations (alembic): old stores upgraded in place, and no drift from tables.py.

``fixtures/v1.db`` is a store made by the first release's code (commit 5d1bdce, schema
version 1; ``fixtures/make_v1.sh`` made it): three runs of two pipelines, an approved
approval, a reported pipeline with a job, task metrics and an event.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrate.domain.errors import WorkspaceError
from orchestrate.store import SCHEMA_VERSION, migrate, open_store, tables
from orchestrate.store.migrations import HEAD
from tests.cli.helpers import invoke
from tests.store.helpers import ROOT, full_run, new_run, python

V1 = Path(__file__).parent / "fixtures" / "v1.db"
V1_TABLES = {
    "approval_audit",
    "approval_requests",
    "events",
    "pipeline_versions",
    "pipelines",
    "reported_jobs",
    "reported_pipelines",
    "reported_steps",
    "run_events",
    "runs",
    "stage_attempts",
    "stages",
    "task_metrics",
}
V1_RUNS = [
    ("01m80m08t7dmxt1y", "hello", 1, "succeeded", '{"greeting":"bonjour"}'),
    ("01m80m09b1aycvzy", "hello", 1, "succeeded", '{"greeting":"hello"}'),
    ("01m80m0cv60anbk6", "gated", 1, "succeeded", "{}"),
]


def rows(db: Path, query: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def table_names(db: Path) -> set[str]:
    return {name for (name,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def v1_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(V1, folder / "orchestrate.db"))


# -- the revisions ------------------------------------------------------------------------


def test_the_revisions_are_one_numbered_line_ending_at_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [HEAD]
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert chain == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    assert SCHEMA_VERSION == int(HEAD) == len(chain)


def test_the_fixture_is_a_version_1_store() -> None:
    # What the upgrade tests start from: the first release's schema, before alembic.
    assert rows(V1, "PRAGMA user_version") == [(1,)]
    assert table_names(V1) == V1_TABLES


# -- migrations and tables.py build the same schema ------------------------------------------


def _split_top_level(body: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [" ".join(p.split()) for p in [*parts, current]]


def normalised_sqlite(db: Path) -> list[tuple[str, str, str]]:
    """sqlite_master, with each CREATE's columns and constraints as a sorted list (order and spacing aside)."""
    out = []
    for kind, name, sql in rows(db, "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"):
        head, _, rest = sql.partition("(")
        body, _, tail = rest.rpartition(")")
        items = sorted(_split_top_level(body))
        out.append((kind, name, f"{' '.join(head.split())} ({', '.join(items)}) {' '.join(tail.split())}"))
    return sorted(out)


@pytest.mark.sqlite_only
def test_sqlite_running_every_revision_equals_creating_from_tables_py(tmp_path: Path) -> None:
    created, migrated = tmp_path / "created.db", tmp_path / "migrated.db"
    open_store(created).close()  # a new file: tables.py's DDL, stamped at the head
    migrate.upgrade_sqlite(migrated)  # an empty file: alembic runs 0001..head
    assert rows(migrated, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert rows(migrated, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert normalised_sqlite(migrated) == normalised_sqlite(created)
    # WITHOUT ROWID tables stay clustered on their primary key
    without_rowid = [name for kind, name, sql in normalised_sqlite(migrated) if sql.endswith("WITHOUT ROWID")]
    assert {"stages", "stage_attempts", "reported_steps", "run_variants"} <= set(without_rowid)
    assert table_names(created) == set(tables.TABLE_NAMES) | {"alembic_version"}


PG_SCHEMA = [
    "SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length "
    "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "SELECT proname, pg_get_function_identity_arguments(oid) FROM pg_proc "
    "WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2",
]


def pg_rows(url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    from orchestrate.store.pg import connect

    conn = connect(url)
    try:
        return [tuple(r) for r in conn.execute(query, params or None).fetchall()]
    finally:
        conn.close()


def pg_schema(url: str) -> list[list[tuple[Any, ...]]]:
    return [pg_rows(url, query) for query in PG_SCHEMA]


def _second_database(url: str) -> str:
    import psycopg

    server, _, name = url.rpartition("/")
    other = f"{name}_b"
    with psycopg.connect(f"{server.replace('postgresql+psycopg://', 'postgresql://')}/postgres") as conn:
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE {other}")
    return f"{server}/{other}"


def test_postgresql_running_every_revision_equals_creating_from_tables_py(postgres_url: str) -> None:
    from alembic import command

    created, migrated = postgres_url, _second_database(postgres_url)
    open_store(created).close()  # an empty database: tables.py's DDL, stamped at the head
    command.upgrade(migrate.alembic_config(migrated), "head")  # alembic runs 0001..head
    assert pg_rows(migrated, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert pg_rows(created, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    created_schema, migrated_schema = pg_schema(created), pg_schema(migrated)
    assert len(created_schema[0]) > 150 and len(created_schema[2]) > 30  # columns, indexes
    assert migrated_schema == created_schema


# -- a version-1 SQLite store, upgraded in place --------------------------------------------


@pytest.mark.sqlite_only
def test_a_version_1_store_keeps_every_row_and_gains_the_new_tables(tmp_path: Path) -> None:
    db = v1_copy(tmp_path)
    before = {table: rows(db, f"SELECT * FROM {table}") for table in V1_TABLES}
    with open_store(db) as store:
        assert [(r.id, r.status.value) for r in store.history("hello")] == [
            ("01m80m09b1aycvzy", "succeeded"),
            ("01m80m08t7dmxt1y", "succeeded"),
        ]
        state = store.run_state("01m80m0cv60anbk6")
        assert state.stages["build"].outputs == {"version": "1.2.3"}
        request = store.approval_requests()[0]
        assert (request.id, request.status.value, request.decided_by) == (
            "01m80m0cwxf4khmj",
            "approved",
            "alice",
        )
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert table_names(db) == set(tables.TABLE_NAMES) | {"alembic_version"}
    # every row of every version-1 table, unchanged
    assert {table: rows(db, f"SELECT * FROM {table}") for table in V1_TABLES} == before
    assert rows(db, "SELECT id, pipeline, version, status, variables FROM runs ORDER BY id") == V1_RUNS
    assert rows(db, "SELECT kind, user, comment FROM approval_audit ORDER BY id") == [
        ("requested", None, None),
        ("approved", "alice", "LGTM"),
    ]
    assert rows(db, "SELECT title, sprint, status FROM reported_pipelines") == [
        ("PROJ-42 fix login", "12", "succeeded")
    ]
    assert rows(
        db, "SELECT task_type, model, status, input_tokens, cost_usd FROM task_metrics WHERE run_id IS NULL"
    ) == [
        ("code_review", "claude-x", "completed", None, None),
        ("impl", "claude-sonnet", "failed", 12000, 0.05),
    ]
    # and the upgraded file has the schema a new one has
    fresh = tmp_path / "fresh.db"
    open_store(fresh).close()
    assert normalised_sqlite(db) == normalised_sqlite(fresh)


@pytest.mark.sqlite_only
def test_the_cli_reads_the_old_runs_and_runs_new_ones(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATE_DATABASE_URL", raising=False)  # this test is about the file
    db = v1_copy(workspace)
    # The definition file as it was when the old runs started: its digest is version 1's.
    (text,) = rows(db, "SELECT text FROM pipeline_versions WHERE pipeline = 'hello'")[0]
    (workspace / "pipelines.d" / "hello.yaml").write_text(text)

    result = invoke("db", "current")
    assert result.exit_code == 0
    assert "schema version 1 (made before alembic), not the head (0002)" in result.output
    assert rows(db, "PRAGMA user_version") == [(1,)]  # `db current` changed nothing

    result = invoke("pipeline", "history", "hello")
    assert result.exit_code == 0, result.output
    assert "01m80m08t7dmxt1y" in result.output and "01m80m09b1aycvzy" in result.output
    assert rows(db, "SELECT version_num FROM alembic_version") == [(HEAD,)]  # upgraded on first use

    result = invoke("pipeline", "run", "hello")
    assert result.exit_code == 0, result.output
    new = rows(db, "SELECT id, version, status FROM runs WHERE id NOT IN (?, ?, ?)", *[r[0] for r in V1_RUNS])
    assert [(version, status) for _, version, status in new] == [(1, "succeeded")]  # same text: version 1
    result = invoke("pipeline", "history", "hello", "--json")
    assert [r["id"] for r in json.loads(result.output)][1:] == ["01m80m09b1aycvzy", "01m80m08t7dmxt1y"]

    result = invoke("db", "current")
    assert result.output.strip() == f"{db}: revision 0002 (head)"


@pytest.mark.sqlite_only
def test_db_upgrade_prints_from_and_to(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATE_DATABASE_URL", raising=False)
    db = v1_copy(workspace)
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"upgraded {db} from schema version 1 (made before alembic) to revision 0002 (head)"
    )
    result = invoke("db", "upgrade", "--json")
    assert json.loads(result.output) == {"store": str(db), "from": "0002", "to": "0002", "head": "0002"}
    assert invoke("db", "upgrade").output.strip() == f"{db} is already at revision 0002 (head)"
    assert rows(db, "SELECT count(*) FROM runs") == [(3,)]


@pytest.mark.sqlite_only
def test_db_upgrade_creates_a_missing_store_and_current_reads_nothing_into_existence(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATE_DATABASE_URL", raising=False)
    db = workspace / "orchestrate.db"
    result = invoke("db", "current", "--json")
    assert json.loads(result.output)["exists"] is False
    assert not db.exists()
    result = invoke("db", "upgrade")
    assert result.output.strip() == f"created {db} at revision 0002 (head)"
    assert json.loads(invoke("db", "current", "--json").output) == {
        "store": str(db),
        "exists": True,
        "revision": "0002",
        "legacy_version": None,
        "head": "0002",
        "is_head": True,
    }


@pytest.mark.sqlite_only
def test_a_version_2_store_made_before_alembic_is_at_0002(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This development's files: tables.py's schema at user_version 2, without alembic_version.

    Opening one reads one PRAGMA and takes it as current (its tables are 0002's); the next
    revision's upgrade runs 0001 and 0002 first, which create only what is missing;
    ``db upgrade`` checks and stamps it now.
    """
    monkeypatch.delenv("ORCHESTRATE_DATABASE_URL", raising=False)
    db = workspace / "orchestrate.db"
    with open_store(db) as store:
        run_id = new_run(store)
        writer = store.writer(run_id)
        for event in full_run(run_id):
            writer.emit(event)
        state = store.run_state(run_id)
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE alembic_version")
    conn.close()
    assert migrate.sqlite_current(db) == migrate.Revision(None, legacy=2)
    with open_store(db) as store:
        assert store.run_state(run_id) == state
    assert "alembic_version" not in table_names(db)  # the fast path: one PRAGMA, nothing written
    assert invoke("db", "current").output.strip() == (
        f"{db}: schema version 2 (made before alembic), the tables of 0002: orchestrate db upgrade records it as 0002"
    )

    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip()
        == f"upgraded {db} from schema version 2 (made before alembic) to revision 0002 (head)"
    )
    assert rows(db, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    with open_store(db) as store:
        assert store.run_state(run_id) == state


@pytest.mark.sqlite_only
def test_a_store_that_cannot_be_upgraded_is_left_as_it_was(tmp_path: Path) -> None:
    # A version-1 store that a development build gave a run_variants of another shape: the
    # check after the upgrade fails, so the whole upgrade rolls back and the file is as it was.
    db = v1_copy(tmp_path)
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE run_variants (run_id VARCHAR NOT NULL, experiment VARCHAR NOT NULL, "
        "variant VARCHAR NOT NULL, PRIMARY KEY (run_id, experiment))"
    )
    conn.commit()
    conn.close()
    before = normalised_sqlite(db)
    with pytest.raises(
        WorkspaceError, match=r"table run_variants lacks column\(s\) assigned_at, assigned_by"
    ):
        open_store(db)
    assert normalised_sqlite(db) == before
    assert rows(db, "PRAGMA user_version") == [(1,)]
    assert rows(db, "SELECT count(*) FROM runs") == [(3,)]


@pytest.mark.sqlite_only
def test_the_cli_names_a_store_newer_than_it_knows(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATE_DATABASE_URL", raising=False)
    db = v1_copy(workspace)
    invoke("db", "upgrade")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    result = invoke("db", "upgrade")
    assert result.exit_code != 0
    assert "has schema version 0099, newer than this orchestrate knows (0002)" in result.output
    assert "Traceback" not in result.output
    assert "newer than this orchestrate knows" in invoke("db", "current").output


UPGRADE_AT_ONCE = "import sys; from orchestrate.store import open_store; open_store(sys.argv[1]).close()"


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_processes_opening_an_old_store_at_once_upgrade_it_once(tmp_path: Path) -> None:
    db = v1_copy(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_AT_ONCE, str(db)],
            env={"PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert rows(db, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert rows(db, "SELECT id, pipeline, version, status, variables FROM runs ORDER BY id") == V1_RUNS


OPEN_AND_LIST_MODULES = """
import json, sys
from orchestrate.store import open_store
store = open_store(sys.argv[1])
store.history("hello")
store.close()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules if m.startswith(("alembic", "sqlalchemy", "sqlmodel"))})))
"""


@pytest.mark.sqlite_only
def test_opening_an_up_to_date_store_imports_neither_alembic_nor_sqlalchemy(tmp_path: Path) -> None:
    db = v1_copy(tmp_path)
    first = python(OPEN_AND_LIST_MODULES, str(db))  # upgrades: alembic does it
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == ["alembic", "sqlalchemy", "sqlmodel"]
    again = python(OPEN_AND_LIST_MODULES, str(db))  # up to date: one PRAGMA
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == []


# -- PostgreSQL -----------------------------------------------------------------------------


def _insert_v1_rows(url: str) -> None:
    """A pipeline, a version, a run with a stage and an attempt, an approval, a metric, as version 1 wrote them."""
    from orchestrate.store.pg import connect

    conn = connect(url)
    try:
        for statement, params in [
            (
                "INSERT INTO pipelines (name, enabled, created_at, updated_at) VALUES (?, ?, ?, ?)",
                ("old", True, 1.0, 1.0),
            ),
            (
                "INSERT INTO pipeline_versions (pipeline, version, digest, path, text, compiled, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ("old", 1, "d" * 64, "pipelines.d/old.yaml", "name: old\n", "{}", 1.0),
            ),
            (
                "INSERT INTO runs (id, pipeline, version, digest, status, created_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ("01oldrun00000000", "old", 1, "d" * 64, "succeeded", 2.0, 3.0),
            ),
            (
                "INSERT INTO stages (run_id, name, position, status, attempts, outputs) VALUES (?, ?, ?, ?, ?, ?)",
                ("01oldrun00000000", "build", 0, "succeeded", 1, '{"wheel":"a.whl"}'),
            ),
            (
                "INSERT INTO stage_attempts (run_id, stage, attempt, started_at, finished_at, status, exit_code, "
                "log_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("01oldrun00000000", "build", 1, 2.0, 3.0, "succeeded", 0, "logs/01oldrun00000000/build.log"),
            ),
            (
                "INSERT INTO approval_requests (id, run_id, stage, iteration, status, approvers, eligible, quorum, "
                "on_timeout, escalate_to, escalated, prevent_self_approval, created_at, decided_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    "01oldreq",
                    "01oldrun00000000",
                    "build",
                    1,
                    "approved",
                    '["alice"]',
                    '["alice"]',
                    1,
                    "reject",
                    "[]",
                    False,
                    False,
                    2.5,
                    "alice",
                ),
            ),
            (
                "INSERT INTO task_metrics (task_id, task_type, duration_seconds, status, created_at, model) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ("t1", "impl", 12.5, "completed", 3.0, "claude"),
            ),
        ]:
            conn.execute(statement, params)
    finally:
        conn.close()


def test_a_postgresql_store_at_revision_0001_is_upgraded_keeping_its_rows(postgres_url: str) -> None:
    from alembic import command

    command.upgrade(migrate.alembic_config(postgres_url), "0001")  # the version-1 schema
    tables_0001 = {
        name
        for (name,) in pg_rows(postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables_0001 == V1_TABLES | {"alembic_version"}
    _insert_v1_rows(postgres_url)
    assert migrate.current(postgres_url) == migrate.Revision("0001")

    with open_store(postgres_url) as store:
        assert [(r.id, r.status.value) for r in store.history("old")] == [("01oldrun00000000", "succeeded")]
        assert store.run_state("01oldrun00000000").stages["build"].outputs == {"wheel": "a.whl"}
        assert store.approval("01oldreq").decided_by == "alice"
    assert pg_rows(postgres_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    names = {
        n for (n,) in pg_rows(postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert names == set(tables.TABLE_NAMES) | {"alembic_version"}
    assert pg_rows(postgres_url, "SELECT count(*) FROM run_variants") == [(0,)]
    assert pg_rows(postgres_url, "SELECT task_type, duration_seconds, model FROM task_metrics") == [
        ("impl", 12.5, "claude")
    ]
    # and the upgraded database has exactly the schema a new one has
    fresh = _second_database(postgres_url)
    open_store(fresh).close()
    assert pg_schema(postgres_url) == pg_schema(fresh)


def test_a_postgresql_store_made_before_alembic_is_adopted(postgres_url: str) -> None:
    # This development's PostgreSQL stores: tables.py's DDL and a one-row orchestrate_schema.
    from orchestrate.store.pg import FUNCTIONS, connect

    conn = connect(postgres_url)
    try:
        for statement in (*FUNCTIONS, *migrate.schema_ddl_pg()):
            conn.execute(statement, None)
        conn.execute("CREATE TABLE orchestrate_schema (version integer NOT NULL)", None)
        conn.execute("INSERT INTO orchestrate_schema (version) VALUES (2)", None)
    finally:
        conn.close()
    _insert_v1_rows(postgres_url)
    assert migrate.current(postgres_url) == migrate.Revision(None, legacy=2)
    with open_store(postgres_url) as store:
        assert [r.id for r in store.history("old")] == ["01oldrun00000000"]
    assert pg_rows(postgres_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert pg_rows(postgres_url, "SELECT to_regclass('orchestrate_schema')") == [(None,)]


def test_a_postgresql_store_newer_than_known_is_refused(postgres_url: str) -> None:
    open_store(postgres_url).close()
    from orchestrate.store.pg import connect

    conn = connect(postgres_url)
    conn.execute("UPDATE alembic_version SET version_num = '0099'", None)
    conn.close()
    with pytest.raises(WorkspaceError, match="newer than this orchestrate knows") as caught:
        open_store(postgres_url)
    assert caught.value.hint


def test_db_commands_on_postgresql(
    workspace: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    command.upgrade(migrate.alembic_config(postgres_url), "0001")
    monkeypatch.setenv("ORCHESTRATE_DATABASE_URL", postgres_url)
    where = re.sub(r"^postgresql\+psycopg://", "postgresql://", postgres_url)
    assert invoke("db", "current").output.strip() == (
        f"{where}: revision 0001, not the head (0002): run orchestrate db upgrade (or any command upgrades it)"
    )
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"upgraded {where} from revision 0001 to revision 0002 (head)"
    assert invoke("db", "current").output.strip() == f"{where}: revision 0002 (head)"


def test_opening_an_up_to_date_postgresql_store_imports_neither_alembic_nor_sqlalchemy(
    postgres_url: str,
) -> None:
    open_store(postgres_url).close()
    result = python(OPEN_AND_LIST_MODULES, postgres_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.sqlite_only
def test_a_store_missing_a_table_says_to_run_db_upgrade(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file an unreleased build stamped as current but without a later table: one clear line."""
    monkeypatch.delenv("ORCHESTRATE_DATABASE_URL", raising=False)
    db = workspace / "orchestrate.db"
    open_store(db).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE goal_links")
    conn.execute("DROP TABLE alembic_version")
    conn.close()
    result = invoke("goal", "show", "nope")
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: the store has no table goal_links: its schema is older than this orchestrate",
        "hint: orchestrate db upgrade adds what is missing (its rows are kept)",
    ]
    assert invoke("db", "upgrade").exit_code == 0
    assert "unknown goal" in invoke("goal", "show", "nope").output
