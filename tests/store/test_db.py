"""Opening the store: schema creation, idempotence, pragmas, and a start-up path without SQLModel."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrate.domain.errors import WorkspaceError
from orchestrate.store import SCHEMA_VERSION, open_store
from tests.store.helpers import ROOT, full_run, new_run, python, rows

TABLES = [
    "alembic_version",  # alembic's revision (migrate.py)
    "approval_audit",
    "approval_requests",
    "events",
    "goal_links",
    "goals",
    "pipeline_versions",
    "pipelines",
    "reported_jobs",
    "reported_pipelines",
    "reported_steps",
    "review_actions",
    "run_events",
    "run_variants",
    "runs",
    "schedule_slots",
    "schedules",
    "stage_attempts",
    "stages",
    "task_metrics",
    "worker_launches",
]


def schema(db: Path) -> list[tuple[str, str]]:
    return rows(db, "select name, sql from sqlite_master where name not like 'sqlite_%' order by name")


def test_open_creates_the_folder_the_file_and_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "orchestrate.db"
    with open_store(db) as store:
        assert store.path == db
    assert rows(db, "select name from sqlite_master where type = 'table' order by name") == [
        (t,) for t in TABLES
    ]
    assert rows(db, "pragma user_version") == [(SCHEMA_VERSION,)]


def test_opening_twice_changes_nothing(db_path: Path) -> None:
    with open_store(db_path) as store:
        new_run(store)
    before = schema(db_path)
    with open_store(db_path) as store, open_store(db_path) as other:
        assert store.run_state("01run00000000000") == other.run_state("01run00000000000")
    assert schema(db_path) == before
    assert rows(db_path, "select count(*) from runs") == [(1,)]


def test_connection_settings(db_path: Path) -> None:
    assert not db_path.exists()
    with open_store(db_path) as store:
        conn = store._db.conn
        assert conn.execute("pragma journal_mode").fetchone() == ("wal",)
        assert conn.execute("pragma synchronous").fetchone() == (1,)  # NORMAL
        assert conn.execute("pragma busy_timeout").fetchone() == (10_000,)
        assert conn.execute("pragma foreign_keys").fetchone() == (1,)
    assert rows(db_path, "pragma journal_mode") == [("wal",)]  # a property of the file


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"pragma user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(WorkspaceError, match="newer than this orchestrate knows") as caught:
        open_store(db_path)
    assert caught.value.hint


def test_a_version_1_file_is_upgraded_in_place_keeping_its_rows(db_path: Path) -> None:
    """Version 1 stores lack the tables added since; opening one adds them and keeps the data."""
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("insert into pipelines (name, enabled, created_at, updated_at) values ('kept', 1, 1, 1)")
    conn.execute("drop table reported_jobs")
    conn.execute("drop table alembic_version")  # version 1 predates alembic
    conn.execute("pragma user_version = 1")
    conn.commit()
    conn.close()
    open_store(db_path).close()
    assert rows(db_path, "pragma user_version") == [(SCHEMA_VERSION,)]
    assert rows(db_path, "select name from pipelines") == [("kept",)]
    tables = {name for (name,) in rows(db_path, "select name from sqlite_master where type = 'table'")}
    assert tables >= set(TABLES)


def test_processes_creating_the_same_fresh_file_at_once(tmp_path: Path) -> None:
    db = tmp_path / "orchestrate.db"
    code = "import sys; from orchestrate.store import open_store; open_store(sys.argv[1]).close()"
    env = {"PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(db)], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert rows(db, "pragma user_version") == [(SCHEMA_VERSION,)]
    assert len(schema(db)) > len(TABLES)  # tables and their indexes, once


HOT_PATH = """
import json, sys, time
from orchestrate.domain.events import RunStarted, StageFinished, StageStarted, RunFinished
from orchestrate.domain.status import RunStatus, StageStatus
import orchestrate.store as s

store = s.open_store(sys.argv[1])
assert store.compiled_definition("hot", "d" * 64) is None
version = store.register_version("hot", "d" * 64, "pipelines.d/hot.yaml", "name: hot\\n", "{}")
assert store.compiled_definition("hot", "d" * 64) == (version, "{}")
store.create_run("01hot00000000000", "hot", version, "d" * 64, {"a": "b"}, ["one"], time.time())
writer = store.writer("01hot00000000000")
writer.emit(RunStarted("01hot00000000000", time.time(), pid=1))
writer.emit(StageStarted("01hot00000000000", "one", 1, time.time(), "one.log"))
writer.emit(StageFinished("01hot00000000000", "one", 1, time.time(), StageStatus.SUCCEEDED, 0))
writer.emit(RunFinished("01hot00000000000", time.time(), RunStatus.SUCCEEDED))
store.heartbeat("01hot00000000000", time.time())
store.run_state(store.resolve_run_id("01hot"))
store.run_record("01hot00000000000")
store.run_events("01hot00000000000")
store.run_definition("01hot00000000000")
store.close()
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("sqlmodel", "sqlalchemy", "pydantic", "orchestrate.store.tables")))))
"""


def test_the_run_path_does_not_import_sqlmodel_once_the_schema_exists(db_path: Path) -> None:
    open_store(db_path).close()
    result = python(HOT_PATH, str(db_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_a_fresh_file_is_created_through_sqlmodel(db_path: Path) -> None:
    # The converse, so the test above cannot pass because nothing ever imports it.
    result = python(HOT_PATH, str(db_path))
    assert result.returncode == 0, result.stderr
    assert "orchestrate.store.tables" in json.loads(result.stdout)


def test_events_survive_reopening(db_path: Path) -> None:
    with open_store(db_path) as store:
        run_id = new_run(store)
        writer = store.writer(run_id)
        for event in full_run(run_id):
            writer.emit(event)
        state = store.run_state(run_id)
    with open_store(db_path) as store:
        assert store.run_state(run_id) == state
