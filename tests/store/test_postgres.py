"""The PostgreSQL store (DESIGN §11) on a real server: the same commands, the same records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrate.store import open_store
from orchestrate.store.pg import translate


def test_statements_are_translated_once_into_postgresql_words() -> None:
    assert translate("BEGIN IMMEDIATE") == "BEGIN"
    assert translate("SELECT a FROM t WHERE b IS ? AND c = ?") == (
        "SELECT a FROM t WHERE b IS NOT DISTINCT FROM %s AND c = %s"
    )
    assert translate("INSERT OR IGNORE INTO t (a) VALUES (?)") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    assert translate("SELECT SUM(CAST(json_extract(o, '$.cost_usd') AS REAL)) FROM s WHERE x LIKE 'a%'") == (
        "SELECT SUM(orchestrate_number(json_extract(o, '$.cost_usd'))) FROM s WHERE x LIKE 'a%%'"
    )
    assert translate("SELECT id FROM runs LIMIT -1 OFFSET ?") == "SELECT id FROM runs LIMIT ALL OFFSET %s"
    assert translate("SELECT 'a%'", False) == "SELECT 'a%'"  # no parameters: nothing to escape


def _cli(workspace: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"ORCHESTRATE_DATABASE_URL": url},
    )


@pytest.mark.slow
def test_a_run_its_history_and_metrics_live_in_postgresql(
    pipeline_file, workspace: Path, postgres_url: str
) -> None:
    pipeline_file(
        "pg",
        """
        name: pg
        stages:
          - name: build
            run: echo "input_tokens=12" >> "$ORCHESTRATE_OUTPUT"; echo "cost_usd=0.5" >> "$ORCHESTRATE_OUTPUT"
          - name: test
            depends_on: [build]
            run: echo tested
        """,
    )
    run = _cli(workspace, postgres_url, "pipeline", "run", "pg", "--json")
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["status"] == "succeeded"
    assert not (workspace / "orchestrate.db").exists()  # nothing went to SQLite
    history = json.loads(_cli(workspace, postgres_url, "pipeline", "history", "pg", "--json").stdout)
    assert [(h["id"], h["status"], h["tokens"], h["cost_usd"]) for h in history] == [
        (record["id"], "succeeded", 12, 0.5)
    ]
    metrics = json.loads(_cli(workspace, postgres_url, "metrics", "--json").stdout)
    assert metrics["success_rate"]["completed"] == 2
    assert (metrics["usage"]["input_tokens"], metrics["usage"]["cost_usd"]) == (12, 0.5)
    with open_store(postgres_url) as store:
        state = store.run_state(record["id"])
        assert [s.status.value for s in state.stages.values()] == ["succeeded", "succeeded"]
        assert type(store.run_events(record["id"])[0]).__name__ == "RunStarted"


def test_an_unreachable_server_is_one_clear_line(pipeline_file, workspace: Path) -> None:
    result = _cli(workspace, "postgresql+psycopg://nobody@127.0.0.1:1/none", "pipeline", "list")
    assert result.returncode != 0
    assert result.stderr.startswith("error: ORCHESTRATE_DATABASE_URL: cannot connect to PostgreSQL:")
    assert "Traceback" not in result.stderr


def test_a_write_wakes_a_listener_as_a_file_change_wakes_a_watcher(postgres_url: str) -> None:
    import threading

    from orchestrate.store.pg import listen

    open_store(postgres_url).close()  # the schema
    stop, woken = threading.Event(), threading.Event()
    listener = threading.Thread(target=listen, args=(postgres_url, stop, woken.set, 0.1), daemon=True)
    listener.start()
    try:
        with open_store(postgres_url) as store:
            for _ in range(50):  # until the listener has subscribed
                store.set_enabled("nothing", True)  # a write transaction (of no row)
                if woken.wait(0.1):
                    break
            assert woken.is_set()
            woken.clear()
            store.active_runs()  # a read notifies nobody
            assert not woken.wait(0.5)
    finally:
        stop.set()
        listener.join(5)
