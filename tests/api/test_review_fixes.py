"""What the QA review of ``orchestrate serve`` found, over HTTP against a real server process."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import ALICE, Server, serving, wait_for
from tests.cli.helpers import raw_store, rows

pytestmark = pytest.mark.slow  # each test starts a server process

BROKEN = "name: broken\nstages:\n  - name: build\n    run: make\n    timeout: 30 minutes\n"
PRICED = """name: priced
stages:
  - name: agent
    run: |
      echo input_tokens=1200 >> "$ORCHESTRATE_OUTPUT"
      echo output_tokens=34 >> "$ORCHESTRATE_OUTPUT"
      echo cost_usd=0.0125 >> "$ORCHESTRATE_OUTPUT"
  - name: wait
    run: sleep 30
    depends_on: [agent]
"""


def cli(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ORCHESTRATE_") or k == "ORCHESTRATE_DATABASE_URL"
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    return rows(db, sql, *params)  # the SQLite file, or the PostgreSQL pass's database


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def start(server: Server, name: str) -> str:
    with server.client(ALICE) as c:
        r = c.post(f"/api/pipelines/{name}/run", json={})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_agents_page_lists_reported_pipelines_with_stale_badges(api_workspace: Path) -> None:
    with (api_workspace / "orchestrate.yaml").open("a") as f:
        f.write("stale_after: 1s\n")
    fresh = cli(api_workspace, "report", "pipeline", "create", "--title", "PROJ-7 fresh").stdout.strip()
    old = cli(api_workspace, "report", "pipeline", "create", "--title", "PROJ-8 old").stdout.strip()
    cli(api_workspace, "report", "job", "start", "research", "Read", "--pipeline", old)
    cli(api_workspace, "report", "job", "start", "research", "Read", "--pipeline", fresh)
    db = api_workspace / "orchestrate.db"
    with raw_store(db) as conn:  # PROJ-8 has had no news for an hour
        conn.execute("UPDATE reported_pipelines SET updated_at = updated_at - 3600 WHERE id = ?", (old,))
    with serving(api_workspace) as server, server.client() as c:
        listed = c.get("/api/agent/pipelines").json()["pipelines"]
        stale = {p["title"]: p["stale"] for p in listed}
        page = c.get("/agents").text
        only = c.get("/agents?stale=1").text
    assert stale["PROJ-8 old"] is True
    assert f'href="/agents/{old}">PROJ-8 old</a> <span class="badge stale">stale</span>' in page
    assert f'href="/agents/{fresh}">PROJ-7 fresh</a>' in page
    assert "nothing reported yet" not in page and "2 in all" in page
    assert "PROJ-8 old" in only and "(showing stale)" in only


def test_a_pipeline_that_never_validated_can_be_opened_and_fixed(api_workspace: Path) -> None:
    target = api_workspace / "pipelines.d" / "broken.yaml"
    target.write_text(BROKEN)
    with serving(api_workspace) as server, server.client(ALICE) as c:
        r = c.get("/api/pipelines/broken")
        assert r.status_code == 200, r.text
        detail = r.json()
        assert detail["version"] is None and detail["text"] == BROKEN and detail["stages"] == []
        issue = detail["issues"][0]
        assert (issue["file"], issue["line"], issue["path"]) == (
            "pipelines.d/broken.yaml",
            5,
            "stages[0].timeout",
        )
        page = c.get("/pipelines/broken")
        assert page.status_code == 200
        assert "The file does not validate: fix it below and save" in page.text
        shown = html.unescape(page.text)
        assert 'pipelines.d/broken.yaml:5:14: stages[0].timeout: "30 minutes" is not a duration' in shown
        assert '"line": 5' in shown  # the editor marks line 5 (app.js reads #file-issues)

        r = c.put("/api/pipelines/broken", json={"text": BROKEN.replace("30 minutes", "30m")})
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "broken", "version": 1, "changed": True}
        assert target.read_text() == BROKEN.replace("30 minutes", "30m")
        fixed = c.get("/api/pipelines/broken").json()
        assert fixed["version"] == 1 and fixed["error"] is None and fixed["registered"] is True


def test_name_mismatch_and_existing_names_never_show_temporary_paths(api_workspace: Path) -> None:
    gated = (api_workspace / "pipelines.d" / "gated.yaml").read_text()
    with serving(api_workspace) as server, server.client(ALICE) as c:
        r = c.put("/api/pipelines/gated", json={"text": gated.replace("name: gated", "name: other")})
        assert r.status_code == 400
        body = r.json()
        assert body["error"] == '"text" defines pipeline other, not gated'
        assert "POST /api/pipelines" in body["hint"]
        r2 = c.post("/api/pipelines", json={"text": gated})
        assert r2.status_code == 409
        assert r2.json()["error"] == "pipeline gated already exists (pipelines.d/gated.yaml)"
        assert "PUT /api/pipelines/gated" in r2.json()["hint"]
        r3 = c.put("/api/pipelines/nosuch", json={"text": gated.replace("name: gated", "name: nosuch")})
        assert r3.status_code == 404 and r3.json()["error"] == 'unknown pipeline "nosuch"'
    for response in (r, r2, r3):
        assert "orchestrate-api-" not in response.text and "/tmp" not in response.text
    assert (api_workspace / "pipelines.d" / "gated.yaml").read_text() == gated


def test_run_detail_carries_usage_kind_and_freshness_like_pipeline_status(api_workspace: Path) -> None:
    with (api_workspace / "orchestrate.yaml").open("a") as f:
        f.write("stale_after: 1s\n")
    (api_workspace / "pipelines.d" / "priced.yaml").write_text(PRICED)
    with serving(api_workspace) as server, server.client() as c:
        run_id = start(server, "priced")

        def settled() -> dict[str, Any] | None:
            record = dict(c.get(f"/api/pipeline-runs/{run_id}").json())
            stages = {s["name"]: s for s in record["stages"]}
            return record if stages["wait"]["status"] == "running" and record["stale"] else None

        record = wait_for(settled)
        page = c.get(f"/runs/{run_id}").text
        cli_record = json.loads(cli(api_workspace, "pipeline", "status", run_id, "--json").stdout)
        shown = cli(api_workspace, "pipeline", "status", run_id).stdout
        with server.client(ALICE) as alice:
            assert alice.post(f"/api/pipeline-runs/{run_id}/cancel").status_code == 200
    agent = {s["name"]: s for s in record["stages"]}["agent"]
    assert agent["usage"] == {"input_tokens": 1200, "output_tokens": 34, "tokens": 1234, "cost_usd": 0.0125}
    assert {s["name"]: s for s in record["stages"]}["wait"]["usage"]["tokens"] == 0
    assert record["usage"] == {"tokens": 1234, "cost_usd": 0.0125}
    assert record["kind"] == cli_record["kind"] == "executed"
    assert record["stale"] is cli_record["stale"] is True
    assert record["stale_reason"].startswith("no update for") and "stale_after 1s" in record["stale_reason"]
    assert record["overdue"] == cli_record["overdue"] == {}
    assert set(cli_record) - {"graph", "approvals", "usage"} <= set(record)
    assert "total: 1,234 tokens, $0.0125" in shown  # the CLI's figures, from the same computation
    assert '<span class="tokens">1,234</span> tokens' in page and '<span class="cost">$0.0125</span>' in page
    assert '<td class="tokens">1,234</td>' in page and '<td class="cost">$0.0125</td>' in page
    assert 'id="run-stale" class="badge stale" >stale: no update for' in page


def test_json_bodies_refuse_booleans_for_numbers_and_strings(api_workspace: Path) -> None:
    db = api_workspace / "orchestrate.db"
    with serving(api_workspace) as server, server.client(ALICE) as c:
        bad = [
            ({"version": True}, '"version": true is not a whole number'),
            ({"variables": {"target": True}}, '"variables.target": true is not a string or a number'),
            ({"variables": {"target": None}}, '"variables.target": null is not a string or a number'),
            ({"force": "yes"}, '"force": "yes" is not true or false'),
        ]
        for body, message in bad:
            r = c.post("/api/pipelines/gated/run", json=body)
            assert r.status_code == 400 and r.json()["error"] == message, (body, r.text)
    assert query(db, "SELECT count(*) FROM runs") == [(0,)]  # nothing started


def test_reads_write_nothing_in_either_mode(api_workspace: Path) -> None:
    fresh = api_workspace / "pipelines.d" / "fresh.yaml"
    fresh.write_text("name: fresh\nstages:\n  - name: a\n    run: echo a\n")
    db = api_workspace / "orchestrate.db"
    with serving(api_workspace) as server:
        run_id = start(server, "gated")
        wait_for(lambda: query(db, "SELECT id FROM approval_requests WHERE status = 'pending'"))
        # The run's process dies; its approval's deadline passes: `approval list` would expire it.
        (pid,) = query(db, "SELECT pid FROM runs WHERE id = ?", run_id)[0]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: gone(pid))
        with raw_store(db) as conn:
            conn.execute("UPDATE approval_requests SET deadline = ?", (time.time() - 60,))
        before = query(db, "SELECT count(*) FROM pipeline_versions")
        with server.client() as c:
            assert [a["status"] for a in c.get("/api/approvals").json()] == ["pending"]
            listed = {p["name"]: p for p in c.get("/api/pipelines").json()}
            assert listed["fresh"]["registered"] is False and listed["fresh"]["version"] is None
            assert listed["gated"]["registered"] is True and listed["gated"]["version"] == 1
            assert c.get("/api/pipelines/fresh").json()["registered"] is False
            assert c.get("/api/pipelines/fresh/runs").json() == []
            for path in ("/", "/pipelines/fresh", "/approvals", f"/runs/{run_id}"):
                assert c.get(path).status_code == 200, path
        assert query(db, "SELECT status FROM approval_requests") == [("pending",)]
        assert query(db, "SELECT count(*) FROM pipeline_versions") == before
        assert not query(db, "SELECT 1 FROM pipelines WHERE name = 'fresh'")
    with serving(api_workspace, "--read-only") as server, server.client() as c:
        assert c.get("/api/pipelines").status_code == 200 and c.get("/pipelines/fresh").status_code == 200
        assert c.get("/api/approvals").json()[0]["status"] == "pending"
    assert query(db, "SELECT count(*) FROM pipeline_versions") == before
    assert query(db, "SELECT status FROM approval_requests") == [("pending",)]
    # The command line does enforce the deadline: the store was in a state a write would change.
    cli(api_workspace, "approval", "list")
    assert query(db, "SELECT status FROM approval_requests") != [("pending",)]


def test_votes_over_http_record_the_api_identity(api_workspace: Path) -> None:
    db = api_workspace / "orchestrate.db"
    with serving(api_workspace) as server:
        run_id = start(server, "gated")
        (request,) = wait_for(lambda: query(db, "SELECT id FROM approval_requests WHERE run_id = ?", run_id))[
            0
        ]
        with server.client(ALICE) as alice:
            assert alice.post(f"/api/approvals/{request}/approve", json={"comment": "ok"}).status_code == 200
        with server.client() as c:
            audit = c.get(f"/api/approvals/{request}").json()["audit"]
    assert [(e["kind"], e["user"], e["os_user"]) for e in audit if e["kind"] == "approved"] == [
        ("approved", "alice", "api:alice")
    ]


def test_http_errors_name_fields_and_parameters_not_cli_flags(api_workspace: Path) -> None:
    with serving(api_workspace) as server:
        run_id = start(server, "gated")
        db = api_workspace / "orchestrate.db"
        (request,) = wait_for(lambda: query(db, "SELECT id FROM approval_requests WHERE run_id = ?", run_id))[
            0
        ]
        with server.client(ALICE) as c:
            since = c.get("/api/agent/metrics", params={"since": "banana"})
            by = c.get("/api/agent/metrics", params={"by": "colour"})
            reject = c.post(f"/api/approvals/{request}/reject", json={})
            push = c.post(f"/api/approvals/{request}/push-back", json={"reason": "x", "rewind_to": "nope"})
            host = c.get("/api/pipelines", headers={"Host": "evil.example"})
            status = c.get("/api/pipelines/gated/runs", params={"status": "bogus"})
            limit = c.get("/api/pipelines/gated/runs", params={"limit": "0"})
    assert status.status_code == 400 and status.json()["error"].startswith(
        "?status=bogus is not a run status"
    )
    assert limit.status_code == 400 and limit.json()["error"] == "?limit must be at least 1, got 0"
    assert since.status_code == 400
    assert (
        since.json()["error"] == "?since=banana: not a duration (30m, 24h, 7d) nor an ISO date (2026-05-01)"
    )
    assert by.status_code == 400 and by.json()["error"].startswith("?by=colour: not one of")
    assert reject.status_code == 400 and reject.json()["error"] == '"reason" is required to reject'
    assert reject.json()["hint"] == 'e.g. {"reason": "needs more testing"}'
    assert push.status_code == 400 and push.json()["error"].startswith('"rewind_to" nope: not a stage before')
    for r in (since, by, reject, push, status, limit):
        assert "--" not in r.json()["error"]
    assert host.status_code == 400 and host.headers["content-type"] == "application/json"
    assert host.json()["error"] == "Host header 'evil.example' is not served here"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--port", "99999"], "99999 is not in the range 1<=x<=65535"),
        (["--port", "0"], "0 is not in the range 1<=x<=65535"),
        (["--host", "nosuch.invalid"], "--host nosuch.invalid: not an address of this machine"),
        (["--host", "192.0.2.1"], "--host 192.0.2.1: not an address of this machine"),
    ],
)
def test_serve_refuses_bad_ports_and_hosts_by_name(api_workspace: Path, args: list[str], said: str) -> None:
    done = cli(api_workspace, "serve", *args)
    assert done.returncode == 2, done.stderr
    assert said in " ".join(done.stderr.split()) and "internal error" not in done.stderr
    if args[0] == "--host":
        assert "--port" not in done.stderr
