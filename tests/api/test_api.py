"""The REST API over HTTP, against a real ``orchestrate serve`` process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.server import ALICE, BOB, Server, serving, wait_for
from tests.cli.helpers import raw_store, rows

pytestmark = pytest.mark.slow  # each test starts a server process and real runs

ISSUE_ROUTES = {
    ("get", "/api/pipelines"),
    ("post", "/api/pipelines"),
    ("get", "/api/pipelines/{name}"),
    ("put", "/api/pipelines/{name}"),
    ("delete", "/api/pipelines/{name}"),
    ("post", "/api/pipelines/{name}/run"),
    ("get", "/api/pipelines/{name}/runs"),
    ("get", "/api/pipeline-runs/{id}"),
    ("post", "/api/pipeline-runs/{id}/cancel"),
    ("get", "/api/pipeline-runs/{id}/logs/{stage}"),
    ("get", "/api/approvals"),
    ("post", "/api/approvals/{id}/approve"),
    ("post", "/api/approvals/{id}/reject"),
    ("post", "/api/approvals/{id}/delegate"),
    ("get", "/api/agent/metrics"),
    ("get", "/api/events"),
}
MUTATING = [
    ("post", "/api/pipelines"),
    ("put", "/api/pipelines/gated"),
    ("delete", "/api/pipelines/gated"),
    ("post", "/api/pipelines/gated/run"),
    ("post", "/api/pipeline-runs/x/cancel"),
    ("post", "/api/approvals/x/approve"),
    ("post", "/api/approvals/x/reject"),
    ("post", "/api/approvals/x/delegate"),
]


def cli(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    return rows(db, sql, *params)  # the SQLite file, or the PostgreSQL pass's database


def start(server: Server, name: str, token: str = ALICE, **body: Any) -> str:
    with server.client(token) as c:
        r = c.post(f"/api/pipelines/{name}/run", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def run_status(server: Server, run_id: str) -> dict[str, Any]:
    with server.client() as c:
        r = c.get(f"/api/pipeline-runs/{run_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def pending_request(server: Server, run_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        with server.client() as c:
            return next((a for a in c.get("/api/approvals").json() if a["run"] == run_id), None)

    return dict(wait_for(found))


def test_openapi_documents_every_route_of_the_issue(api_workspace: Path) -> None:
    with serving(api_workspace) as server, server.client() as c:
        doc = c.get("/openapi.json").json()
    served = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served >= ISSUE_ROUTES
    assert doc["paths"]["/api/approvals/{id}/approve"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in doc["paths"]["/api/pipelines"]["get"]


def test_create_update_delete_validate_with_the_clis_messages(api_workspace: Path) -> None:
    bad = "name: ci\nstages:\n  - name: build\n    run: make\n    timeout: 30 minutes\n"
    (api_workspace / "draft.yaml").write_text(bad)
    with serving(api_workspace) as server, server.client(ALICE) as c:
        r = c.post("/api/pipelines", json={"text": bad})
        assert r.status_code == 422
        issue = r.json()["issues"][0]
        assert (issue["file"], issue["line"], issue["column"], issue["path"]) == (
            "pipelines.d/ci.yaml",
            5,
            14,
            "stages[0].timeout",
        )
        # The same words and position as the command line gives for the same text.
        said = cli(api_workspace, "pipeline", "validate", "draft.yaml").stderr
        assert issue["message"] in said and ":5:14: stages[0].timeout:" in said
        assert not (api_workspace / "pipelines.d" / "ci.yaml").exists()  # nothing stored

        good = bad.replace("30 minutes", "30m")
        r = c.post("/api/pipelines", json={"text": good})
        assert r.status_code == 201, r.text
        assert r.json() == {"name": "ci", "version": 1, "path": "pipelines.d/ci.yaml"}
        assert (api_workspace / "pipelines.d" / "ci.yaml").read_text() == good
        assert c.post("/api/pipelines", json={"text": good}).status_code == 409  # exists already

        r = c.put("/api/pipelines/ci", json={"text": good.replace("make", "make all")})
        assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["changed"] is True
        r = c.put(
            "/api/pipelines/ci", json={"text": good.replace("build", "build\n    depends_on: [biuld]", 1)}
        )
        assert r.status_code == 422 and 'unknown stage "biuld"' in r.json()["error"]
        assert (
            "make all" in (api_workspace / "pipelines.d" / "ci.yaml").read_text()
        )  # the bad edit is not saved

        detail = c.get("/api/pipelines/ci").json()
        assert detail["version"] == 2 and detail["stages"] == [{"name": "build", "needs": []}]
        assert c.get("/api/pipelines/nope").status_code == 404
        assert c.get("/api/pipelines/ci", params={"version": 1}).json()["text"] == good

        r = c.delete("/api/pipelines/ci")
        assert r.status_code == 200 and not (api_workspace / "pipelines.d" / "ci.yaml").exists()
        assert "ci" not in [p["name"] for p in c.get("/api/pipelines").json()]


def test_run_stream_approve_as_the_tokens_user(api_workspace: Path) -> None:
    db = api_workspace / "orchestrate.db"
    with serving(api_workspace) as server:
        events: list[dict[str, Any]] = []
        ready = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", server.url + "/api/events", timeout=30) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                ready.set()
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                        if events[-1]["kind"] == "run_finished":
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(10)
        with server.client() as anonymous:
            refused = anonymous.post("/api/pipelines/gated/run", json={})
        assert refused.status_code == 401 and "bearer token" in refused.json()["error"]

        run_id = start(server, "gated", variables={"target": "prod"})
        request = pending_request(server, run_id)
        assert run_status(server, run_id)["status"] == "waiting_approval"
        with server.client(BOB) as bob:
            r = bob.post(f"/api/approvals/{request['id']}/approve", json={"comment": "me too"})
        assert r.status_code == 403 and "bob is not an approver" in r.json()["error"]
        with server.client(ALICE) as alice:
            r = alice.post(f"/api/approvals/{request['id']}/approve", json={"comment": "LGTM"})
        assert r.status_code == 200 and r.json()["status"] == "approved"
        listener.join(30)

        record = run_status(server, run_id)
        assert record["status"] == "succeeded" and record["started_by"] == "alice"
        assert {s["name"]: s["status"] for s in record["stages"]}["deploy"] == "succeeded"
        with server.client() as c:
            assert c.get(f"/api/pipeline-runs/{run_id}/logs/deploy").text == "deployed prod\n"
            assert c.get("/api/pipelines/gated/runs").json()[0]["id"] == run_id

    mine = [(e["kind"], e.get("stage")) for e in events if e["run_id"] == run_id]
    assert mine[0] == ("run_started", None) and mine[-1] == ("run_finished", None)
    assert ("stage_waiting", "deploy-gate") in mine and ("stage_finished", "deploy") in mine
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    audit = query(db, 'SELECT kind, "user" FROM approval_audit ORDER BY id')
    assert ("refused", "bob") in audit and ("approved", "alice") in audit


def test_reject_and_delegate_follow_the_cli_rules(api_workspace: Path) -> None:
    with serving(api_workspace) as server:
        run_id = start(server, "gated")
        request = pending_request(server, run_id)["id"]
        with server.client(ALICE) as alice:
            assert alice.post(f"/api/approvals/{request}/delegate", json={}).status_code == 400
            r = alice.post(f"/api/approvals/{request}/delegate", json={"to": "bob"})
            assert r.status_code == 200
            again = alice.post(f"/api/approvals/{request}/approve", json={})
            assert again.status_code == 403 and "alice delegated their vote to bob" in again.json()["error"]
        with server.client(BOB) as bob:
            assert bob.post(f"/api/approvals/{request}/reject", json={}).status_code == 400  # no reason
            r = bob.post(f"/api/approvals/{request}/reject", json={"reason": "not today"})
            assert r.status_code == 200 and r.json()["status"] == "rejected"
        final = wait_for(lambda: (s := run_status(server, run_id))["status"] == "failed" and s)
        assert "not today" in {s["name"]: s for s in final["stages"]}["deploy-gate"]["reason"]


def test_cancel_and_errors_name_what_is_wrong(api_workspace: Path) -> None:
    with serving(api_workspace) as server:
        run_id = start(server, "slow")
        wait_for(lambda: run_status(server, run_id)["status"] == "running")
        with server.client(BOB) as bob:
            r = bob.post(f"/api/pipeline-runs/{run_id}/cancel")
        assert r.status_code == 200 and r.json()["requested_by"] == "bob"
        record = wait_for(lambda: (s := run_status(server, run_id))["status"] == "cancelled" and s)
        assert record["cancelled_by"] == "bob"
        with server.client(ALICE) as c:
            missing = c.get("/api/pipeline-runs/zzzz")
            assert missing.status_code == 404 and missing.json()["error"] == 'unknown run "zzzz"'
            assert c.post("/api/pipelines/gated/run", json={"variables": {"nope": "1"}}).status_code == 400
            assert (
                "has no variable 'nope'"
                in c.post("/api/pipelines/gated/run", json={"variables": {"nope": "1"}}).json()["error"]
            )
            assert c.post("/api/pipelines/gated/run", content=b"{not json").status_code == 400
            assert c.post(f"/api/pipeline-runs/{run_id}/cancel").status_code == 400  # already cancelled


def test_metrics_is_the_clis_contract(api_workspace: Path) -> None:
    assert (
        cli(
            api_workspace,
            "metrics",
            "record",
            "--task-type",
            "review",
            "--duration",
            "4",
            "--status",
            "completed",
        ).returncode
        == 0
    )
    assert (
        cli(
            api_workspace,
            "metrics",
            "record",
            "--task-type",
            "review",
            "--duration",
            "9",
            "--status",
            "failed",
        ).returncode
        == 0
    )
    expected = json.loads(cli(api_workspace, "metrics", "--json").stdout)
    with serving(api_workspace) as server, server.client() as c:
        got = c.get("/api/agent/metrics").json()
        daily = c.get("/api/agent/metrics/daily").json()
        page = c.get("/metrics")
    for key in ("execution_time", "success_rate", "by_task_type", "by_model", "usage"):
        assert got[key] == expected[key]
    assert got["success_rate"]["completed"] == 1 and got["success_rate"]["total"] == 2
    assert daily[-1]["count"] == 2 and daily[-1]["p50_seconds"] == 4.0 and daily[-1]["p95_seconds"] == 9.0
    assert page.status_code == 200 and "<svg" in page.text and "P95" in page.text


def test_reported_pipelines_and_markdown_logs(api_workspace: Path) -> None:
    pid = cli(
        api_workspace, "report", "pipeline", "create", "--type", "ticket_work", "--title", "PROJ-1"
    ).stdout.strip()
    job = cli(
        api_workspace, "report", "job", "start", "research", "Read code", "--pipeline", pid
    ).stdout.strip()
    assert (
        cli(api_workspace, "report", "log", job, "--text", "## Found\n\n*bold* <script>x</script>").returncode
        == 0
    )
    with serving(api_workspace) as server, server.client() as c:
        listed = c.get("/api/agent/pipelines").json()
        assert [p["id"] for p in listed["pipelines"]] == [pid] and listed["pipelines"][0]["stale"] is False
        tree = c.get(f"/api/agent/pipelines/{pid}").json()
        assert [s["name"] for s in tree["steps"]] == ["research", "coding", "wrap-up"]
        log = c.get(f"/api/agent/jobs/{job}/log").json()
        assert "*bold*" in log["markdown"]
        html = c.get(f"/agents/{pid}").text
    assert "<em>bold</em>" in html and "<script>x</script>" not in html  # rendered, raw HTML escaped


def test_log_paths_cannot_escape_the_workspace(api_workspace: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    db = api_workspace / "orchestrate.db"
    with serving(api_workspace) as server:
        run_id = start(server, "gated")
        pending_request(server, run_id)
        with raw_store(db) as conn:  # a store someone tampered with
            conn.execute(
                "UPDATE stage_attempts SET log_path = ? WHERE run_id = ? AND stage = 'build'",
                (str(secret), run_id),
            )
            conn.execute(
                "UPDATE stage_attempts SET log_path = ? WHERE run_id = ? AND stage = 'test'",
                (str(api_workspace / "logs" / ".." / ".." / "secret.txt"), run_id),
            )
        pid = cli(api_workspace, "report", "pipeline", "create", "--title", "t").stdout.strip()
        job = cli(api_workspace, "report", "job", "start", "work", "j", "--pipeline", pid).stdout.strip()
        cli(api_workspace, "report", "log", job, "--text", "hi")
        with raw_store(db) as conn:
            conn.execute("UPDATE reported_jobs SET log_path = '../secret.txt' WHERE id = ?", (job,))
        with server.client() as c:
            for stage in ("build", "test"):
                r = c.get(f"/api/pipeline-runs/{run_id}/logs/{stage}")
                assert r.status_code == 403 and "outside" in r.json()["error"] and "top secret" not in r.text
            assert c.get(f"/api/pipeline-runs/{run_id}/logs/lint").text == "linted\n"
            r = c.get(f"/api/agent/jobs/{job}/log")
            assert r.status_code == 403 and "top secret" not in r.text


def test_read_only_serves_no_mutating_route(api_workspace: Path) -> None:
    with serving(api_workspace, "--read-only") as server, server.client(ALICE) as c:
        assert "read-only" in server.banner and "token" not in server.banner
        for method, path in MUTATING:
            assert c.request(method, path, json={}).status_code in (404, 405), (method, path)
        doc = c.get("/openapi.json").json()
        served = {(m, p) for p, ops in doc["paths"].items() for m in ops}
        assert {(m, p) for m, p in served if m != "get"} == {("post", "/api/validate")}  # stores nothing
        assert c.get("/api/pipelines").status_code == 200
        assert 'data-read-only="true"' in c.get("/pipelines/gated").text
    assert not list((api_workspace / "logs").glob("*/run.log"))  # nothing ran


def test_binds_loopback_prints_a_token_and_refuses_foreign_hosts(api_workspace: Path) -> None:
    with serving(api_workspace, tokens=None) as server:
        assert server.banner.startswith(f"orchestrate serve: http://127.0.0.1:{server.port}/")
        token = server.banner.split("token for server-owner: ")[1].split()[0]
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # LISTEN
        assert f"0100007F:{server.port:04X}" in local  # 127.0.0.1 only
        with server.client("wrong-token-0123456789") as wrong:
            assert wrong.post("/api/pipelines/gated/run", json={}).status_code == 401
        with server.client(token) as owner:
            assert owner.get("/api/me").json()["user"] == "server-owner"
            run_id = owner.post("/api/pipelines/gated/run", json={}).json()["id"]
        assert run_status(server, run_id)["started_by"] == "server-owner"
        with server.client() as c:
            assert c.get("/api/pipelines", headers={"Host": "evil.example"}).status_code == 400
