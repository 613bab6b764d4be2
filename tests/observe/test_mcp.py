"""``orchestrate mcp`` as a client sees it: a real server process, the SDK's own stdio client."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

TOOLS = {
    "create_pipeline",
    "create_pipeline_job",
    "update_pipeline_job",
    "append_job_log",
    "finish_pipeline",
    "list_pipelines",
    "get_pipeline",
    "get_pipeline_job_log",
    "clean_pipeline_logs",
    "run_pipeline",
    "get_run_status",
    "list_approvals",
}

Call = Callable[..., Awaitable[Any]]


def with_server(workspace: Path, body: Callable[[ClientSession, Call], Awaitable[None]]) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "orchestrate", "mcp"], cwd=workspace)

    async def main() -> None:
        with anyio.fail_after(60):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()

                async def call(tool: str, **arguments: Any) -> Any:
                    result = await session.call_tool(tool, arguments)
                    assert not result.is_error, result.content
                    assert result.structured_content is not None
                    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
                    return result.structured_content

                await body(session, call)

    anyio.run(main)


def test_a_whole_ticket_work_session_over_mcp(workspace: Path) -> None:
    async def session_(session: ClientSession, call: Call) -> None:
        listed = await session.list_tools()
        names = {t.name for t in listed.tools}
        assert names == TOOLS and not {"approve", "reject"} & {n.split("_")[0] for n in names}

        p = await call("create_pipeline", title="PROJ-7 login", pipeline_type="ticket_work", sprint="3")
        assert [s["name"] for s in p["steps"]] == ["research", "coding", "wrap-up"] and p[
            "status"
        ] == "running"
        research = await call("create_pipeline_job", pipeline_id=p["id"], step="research", name="Read")
        await call("append_job_log", job_id=research["id"], markdown="first finding", title="one")
        logged = await call("append_job_log", job_id=research["id"], markdown="second finding")
        done = await call("update_pipeline_job", job_id=research["id"], status="success", summary="clear")
        assert (done["status"], done["step_status"], done["pipeline_status"]) == (
            "succeeded",
            "succeeded",
            "running",
        )
        coding = await call(
            "create_pipeline_job", pipeline_id=p["id"], step="coding", name="Fix", description="d"
        )
        failed = await call("update_pipeline_job", job_id=coding["id"], status="failure")
        assert (failed["step_status"], failed["pipeline_status"]) == ("failed", "failed")
        wrap = await call("create_pipeline_job", pipeline_id=p["id"], step="wrap-up", name="PR")
        await call("update_pipeline_job", job_id=wrap["id"], status="success")

        tree = await call("get_pipeline", pipeline_id=p["id"])
        assert [(s["name"], s["status"]) for s in tree["steps"]] == [
            ("research", "succeeded"),
            ("coding", "failed"),
            ("wrap-up", "succeeded"),
        ]
        job = tree["steps"][0]["jobs"][0]
        assert job["log_path"] == logged["log_path"] and job["started_at"] and job["finished_at"]
        log = await call("get_pipeline_job_log", job_id=research["id"])
        assert log["markdown"].count("\n## ") == 2 and "second finding" in log["markdown"]

        finished = await call("finish_pipeline", pipeline_id=p["id"])
        assert finished["status"] == "failed" and finished["finished_at"]  # a failed job failed it

        other = await call("create_pipeline", title="close", pipeline_type="sprint_close", sprint="3")
        page = await call("list_pipelines", limit=1)
        assert (page["total"], page["next_offset"], page["pipelines"][0]["id"]) == (2, 1, other["id"])
        assert (await call("list_pipelines", status="failure"))["pipelines"][0]["id"] == p["id"]
        assert (await call("list_pipelines", pipeline_type="sprint_close"))["total"] == 1
        assert (await call("list_pipelines", stale=True))["total"] == 0
        cleaned = await call("clean_pipeline_logs", sprint="3")
        assert cleaned["cleaned"] == [p["id"]] and cleaned["still_open"] == [other["id"]]
        assert (await call("get_pipeline_job_log", job_id=research["id"]))["cleaned_at"]

        # errors are tool errors with a clear message, and the server goes on
        bad = await session.call_tool("update_pipeline_job", {"job_id": "nope", "status": "success"})
        assert bad.is_error and 'unknown reported job "nope"' in bad.content[0].text  # type: ignore[union-attr]
        bad = await session.call_tool("update_pipeline_job", {"job_id": wrap["id"], "status": "done"})
        assert bad.is_error and 'unknown status "done"' in bad.content[0].text  # type: ignore[union-attr]
        bad = await session.call_tool("finish_pipeline", {"pipeline_id": p["id"]})
        assert bad.is_error and "is finished" in bad.content[0].text  # type: ignore[union-attr]
        assert (await call("get_pipeline", pipeline_id=other["id"]))["title"] == "close"

    with_server(workspace, session_)
    activity = (workspace / "logs" / "activity.md").read_text()
    assert "ticket_work “PROJ-7 login” (sprint 3) failed in" in activity and "3 jobs" in activity


def test_run_a_pipeline_and_follow_it(workspace: Path, pipeline_file) -> None:  # type: ignore[no-untyped-def]
    pipeline_file("hello", "name: hello\nstages:\n  - {name: greet, run: echo hi}\n")

    async def session_(session: ClientSession, call: Call) -> None:
        started = await call("run_pipeline", name="hello")
        assert started["status"] == "pending" and started["pipeline"] == "hello"
        deadline = time.monotonic() + 30
        while (status := await call("get_run_status", run_id=started["id"]))["status"] != "succeeded":
            assert time.monotonic() < deadline, status
            await anyio.sleep(0.1)
        assert status["stages"][0]["name"] == "greet"
        assert await call("list_approvals") == {"approvals": []}
        missing = await session.call_tool("run_pipeline", {"name": "nope"})
        assert missing.is_error and "nope" in missing.content[0].text  # type: ignore[union-attr]

    with_server(workspace, session_)
