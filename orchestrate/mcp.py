"""``orchestrate mcp``: the reporting operations as MCP tools over stdio (DESIGN §7).

Built on the official MCP Python SDK (``mcp.server.MCPServer``). Nine tools report and
read agent work, as the command line's ``orchestrate report …`` does: create_pipeline,
create_pipeline_job, update_pipeline_job, append_job_log, finish_pipeline,
list_pipelines, get_pipeline, get_pipeline_job_log, clean_pipeline_logs. Three more
reach executed pipelines: run_pipeline (in the background), get_run_status and
list_approvals. Approving and rejecting are not tools: people decide.

Each call resolves the workspace and opens the store anew (one short unit of work), so
a server started before ``orchestrate init`` works once the workspace exists. Every
failure comes back as an MCP tool error whose text says what went wrong and what to do,
never as a crash of the server. Imported only by ``orchestrate mcp``: the SDK is heavy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from orchestrate import __version__

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store import Store

T = TypeVar("T")

INSTRUCTIONS = """\
Report your work to orchestrate so that a person can watch it live.
1. create_pipeline(pipeline_type="ticket_work", title=...) once, at the start: it has the steps
   research, coding and wrap-up. Keep the returned id.
2. For each piece of work: create_pipeline_job(pipeline_id, step, name), then append_job_log
   (markdown, one section per call) as you go, then update_pipeline_job(job_id, status="success"
   or "failure", summary=...). A failed job fails its step and the pipeline.
3. finish_pipeline(pipeline_id) when done (the status comes from the steps unless you give one).
Reporting is best effort: if a tool errors, carry on with your work.
"""


def _settings(workspace: Path | None) -> Settings:
    from orchestrate import settings

    return settings.resolve(workspace, os.environ, Path.cwd())


def _message(e: BaseException) -> str:
    from orchestrate.domain.errors import OrchestrateError

    if isinstance(e, OrchestrateError):
        return "; ".join(e.lines())
    return f"{type(e).__name__}: {e}"


def build_server(workspace: Path | None = None) -> MCPServer:
    """The server with its twelve tools, over the workspace found as the command line finds it."""
    server = MCPServer("orchestrate", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")

    @contextmanager
    def opened() -> Iterator[tuple[Settings, Store]]:
        from orchestrate.store import open_store

        try:
            s = _settings(workspace)
            store = open_store(s.store_location)
        except Exception as e:
            raise ToolError(_message(e)) from e
        try:
            yield s, store
        except ToolError:
            raise
        except Exception as e:
            raise ToolError(_message(e)) from e
        finally:
            store.close()

    def call(body: Callable[[Settings, Store], T]) -> T:
        with opened() as (s, store):
            return body(s, store)

    from orchestrate.domain.observe import ReportStatus, parse_status, parse_type
    from orchestrate.observe import records, service

    def where() -> service.Where:
        return service.Where.from_env(os.environ)

    def tree(s: Settings, p: Any) -> dict[str, Any]:
        return records.pipeline_json(p, s.root, time.time(), service.stale_after(s))

    @server.tool()
    def create_pipeline(
        title: str,
        pipeline_type: str = "ticket_work",
        sprint: str | None = None,
        steps: list[str] | None = None,
    ) -> dict[str, Any]:
        """Start a pipeline of your work. ticket_work gets the steps research, coding, wrap-up;
        sprint_close and custom start with the `steps` given (more appear as jobs name them).
        Returns the pipeline with its id."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            p = service.create_pipeline(
                s, store, parse_type(pipeline_type), title, sprint=sprint, steps=steps or (), where=where()
            )
            return tree(s, p)

        return call(body)

    @server.tool()
    def create_pipeline_job(
        pipeline_id: str, step: str, name: str, description: str | None = None, status: str = "running"
    ) -> dict[str, Any]:
        """Add a job to a step of a pipeline (status running, or pending to start it later). Returns the job."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            state = parse_status(status, allowed=(ReportStatus.PENDING, ReportStatus.RUNNING))
            job = service.start_job(
                s,
                store,
                step,
                name,
                pipeline=pipeline_id,
                description=description,
                status=state,
                where=where(),
            )
            return records.job_json(job, s.root, time.time())

        return call(body)

    @server.tool()
    def update_pipeline_job(job_id: str, status: str, summary: str | None = None) -> dict[str, Any]:
        """Set a job's status: success or failure (closes it, sets finished_at), or running.
        The change propagates: a failed job fails its step and its pipeline."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            job = service.update_job(store, job_id, parse_status(status), summary)
            p = service.get_pipeline(store, job.pipeline_id)
            data = records.job_json(job, s.root, time.time())
            data["step_status"] = next(st.status.value for st in p.steps if st.name == job.step)
            data["pipeline_status"] = p.status.value
            return data

        return call(body)

    @server.tool()
    def append_job_log(job_id: str, markdown: str, title: str | None = None) -> dict[str, Any]:
        """Append markdown to the job's log as one new section under a timestamp heading.
        The log file is created by the first call."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            path = service.append_log(s, store, job_id, markdown, title=title)
            return {"job_id": store.reports().job(job_id).id, "log_path": str(path)}

        return call(body)

    @server.tool()
    def finish_pipeline(
        pipeline_id: str, status: str | None = None, summary: str | None = None
    ) -> dict[str, Any]:
        """Close the pipeline: jobs still open are cancelled; without a status (success, failure,
        cancelled) it is failed if a step failed, else succeeded. Returns the whole tree."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            state = parse_status(status) if status else None
            p = service.finish(s, store, pipeline=pipeline_id, status=state, summary=summary, where=where())
            return tree(s, p)

        return call(body)

    @server.tool()
    def list_pipelines(
        status: str | None = None,
        pipeline_type: str | None = None,
        sprint: str | None = None,
        stale: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Pipelines, newest first, filtered by status, type and sprint; stale=true keeps the running
        ones with no update for stale_after (6h). Page with limit and offset (next_offset)."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            page = service.list_pipelines(
                s,
                store,
                status=parse_status(status) if status else None,
                type=parse_type(pipeline_type) if pipeline_type else None,
                sprint=sprint,
                stale=stale,
                limit=limit,
                offset=offset,
            )
            return records.page_json(page, s.root)

        return call(body)

    @server.tool()
    def get_pipeline(pipeline_id: str) -> dict[str, Any]:
        """The full pipeline tree: steps, jobs, timestamps, durations, statuses and log paths."""
        return call(lambda s, store: tree(s, service.get_pipeline(store, pipeline_id)))

    @server.tool()
    def get_pipeline_job_log(job_id: str) -> dict[str, Any]:
        """The job's whole log as markdown (empty before the first append)."""
        return call(lambda s, store: records.job_log_json(service.job_log(s, store, job_id)))

    @server.tool()
    def clean_pipeline_logs(sprint: str, dry_run: bool = False) -> dict[str, Any]:
        """Delete the job logs of the sprint's finished pipelines (cleanup after the sprint closes)."""
        return call(lambda s, store: records.cleaned_json(service.clean(s, store, sprint, dry_run=dry_run)))

    @server.tool()
    def run_pipeline(name: str, variables: dict[str, str] | None = None) -> dict[str, Any]:
        """Start a run of a pipeline of the workspace in the background; returns its id.
        Follow it with get_run_status."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            from orchestrate.services import runs

            run_store, state, _spec = runs.prepare(s, name, dict(variables or {}), env=os.environ)
            try:
                pid = runs.detach(s, state.run_id, None)
            finally:
                run_store.close()
            return {"id": state.run_id, "pipeline": state.pipeline, "pid": pid, "status": "pending"}

        return call(body)

    @server.tool()
    def get_run_status(run_id: str) -> dict[str, Any]:
        """An executed run: status, stages with their attempts, durations, outputs and log paths."""
        return call(lambda s, store: store.run_record(store.resolve_run_id(run_id)))

    @server.tool()
    def list_approvals(pending_only: bool = True, limit: int = 50) -> dict[str, Any]:
        """Approval requests, newest first (pending only by default). Deciding them is for people."""

        def body(s: Settings, store: Store) -> dict[str, Any]:
            approvals = [
                {
                    "id": r.id,
                    "run": r.run_id,
                    "pipeline": r.pipeline,
                    "stage": r.stage,
                    "status": r.status.value,
                    "approvers": list(r.approvers),
                    "quorum": r.quorum,
                    "created_at": r.created_at,
                    "deadline": r.deadline,
                    "decide_with": f"orchestrate approval approve {r.id}",
                }
                for r in store.approval_requests(pending_only=pending_only, limit=limit)
            ]
            return {"approvals": approvals}

        return call(body)

    return server


def serve(workspace: Path | None = None) -> None:
    """Run the server on stdin/stdout until the client closes it."""
    build_server(workspace).run("stdio")
