"""The dashboard: server-rendered HTML pages over the same reads as the JSON API.

Pages render what the API returns (routes.py), so the two cannot disagree; the small
script in web/static/app.js makes them live (the event stream) and sends the mutating
calls with the bearer token. Nothing is loaded from another host: it works offline.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from orchestrate.api import routes, svg
from orchestrate.api.app import WEB_DIR, Endpoint, context, status_for
from orchestrate.domain.errors import OrchestrateError

templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))


def _when(at: float | None) -> str:
    return "—" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{int(value // 60)}m{int(value % 60):02d}s"
    return f"{int(value // 3600)}h{int(value % 3600 // 60):02d}m"


def _ago(at: float | None) -> str:
    from orchestrate.ui.text import ago

    return "never" if at is None else ago(at, time.time())


templates.env.filters.update(when=_when, seconds=_seconds, ago=_ago)


def _render(request: Request, name: str, status: int = 200, **data: Any) -> Response:
    ctx = context(request)
    common = {
        "read_only": ctx.read_only,
        "workspace": ctx.settings.root.name,
        "page": name.removesuffix(".html"),
    }
    clash = sorted(set(common) & set(data))
    assert not clash, f"{name}: {clash} are set by every page; name the page's data otherwise"
    data.update(common)
    return templates.TemplateResponse(request, name, data, status_code=status)


def page(fn: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """A user mistake (an unknown run, say) is an HTML page with the CLI's message, not JSON."""

    @functools.wraps(fn)
    def wrapper(request: Request) -> Response:
        try:
            return fn(request)
        except OrchestrateError as e:
            return _render(request, "error.html", status_for(e), lines=e.lines())

    return wrapper


@page
def index(request: Request) -> Response:
    from orchestrate.services import catalog
    from orchestrate.services.records import listed_json

    ctx = context(request)
    rows = [
        listed_json(r, registered=registered) for r, registered in catalog.listing(ctx.settings, ctx.store)
    ]
    pending = ctx.store.approval_requests(pending_only=True)
    return _render(request, "index.html", pipelines=rows, pending=len(pending))


@page
def pipeline(request: Request) -> Response:
    ctx = context(request)
    name = routes._pipeline_name(request)
    detail = routes.pipeline_detail(ctx.settings, ctx.store, name, None)
    history = ctx.store.history(name, 30)  # none yet for a file never run (or never valid)
    runs = [r.__dict__ | {"status": r.status.value} for r in history]
    needs = {s["name"]: s["needs"] for s in detail["stages"]}
    return _render(
        request,
        "pipeline.html",
        p=detail,
        runs=runs,
        timeline=svg.timeline(runs, time.time()),
        graph=svg.dag(detail["levels"], needs, {}),
    )


@page
def run(request: Request) -> Response:
    ctx = context(request)
    record = routes.run_detail(ctx.settings, ctx.store, request.path_params["id"])
    statuses = {s["name"]: s["status"] for s in record["stages"]}
    in_graph = {n for level in record["graph"]["levels"] for n in level}
    extra = [s["name"] for s in record["stages"] if s["name"] not in in_graph]
    graph = svg.dag(record["graph"]["levels"], record["graph"]["needs"], statuses, extra)
    return _render(request, "run.html", run=record, graph=graph)


@page
def approvals(request: Request) -> Response:
    from orchestrate.services.records import request_json

    ctx = context(request)
    found = [request_json(r) for r in ctx.store.approval_requests(pending_only=False)]
    return _render(request, "approvals.html", requests=found)


@page
def agents(request: Request) -> Response:
    from orchestrate.observe import records, service

    ctx = context(request)
    stale = request.query_params.get("stale") in ("1", "true")
    page_ = service.list_pipelines(ctx.settings, ctx.store, stale=stale, limit=100)
    return _render(
        request, "agents.html", listing=records.page_json(page_, ctx.settings.root), stale_only=stale
    )


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    # Raw HTML in a log is shown as text, never run: logs are written by agents.
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


@page
def agent(request: Request) -> Response:
    from markupsafe import Markup

    from orchestrate.observe import records, service

    ctx = context(request)
    found = service.get_pipeline(ctx.store, request.path_params["id"])
    data = records.pipeline_json(found, ctx.settings.root, time.time(), service.stale_after(ctx.settings))
    logs: dict[str, Any] = {}
    for step in found.steps:
        for job in step.jobs:
            if job.log_path is None:
                continue
            try:
                log = routes.job_log(ctx.settings, ctx.store, job.id)
                logs[job.id] = Markup(_markdown(log.markdown)) if log.markdown else None
            except OrchestrateError as e:
                logs[job.id] = Markup("<p class='error'>{}</p>").format(e.message)
    return _render(request, "agent.html", p=data, logs=logs)


@page
def metrics(request: Request) -> Response:
    from orchestrate.metrics import service
    from orchestrate.metrics.timeline import daily_percentiles

    ctx = context(request)
    pipeline = request.query_params.get("pipeline") or None
    summary = service.summarize(ctx.store, None, pipeline, None, None)
    days = daily_percentiles(ctx.store, None, pipeline, None)
    labels = [d["date"][5:] for d in days]
    durations = svg.line_chart(
        labels,
        [("P50", [d["p50_seconds"] for d in days]), ("P95", [d["p95_seconds"] for d in days])],
        unit="s",
    )
    rates = svg.line_chart(
        labels, [("success rate", [d["success_rate"] for d in summary["daily"]])], unit="%", y_max=1.0
    )
    return _render(
        request, "metrics.html", m=summary, durations=durations, rates=rates, pipeline=pipeline or ""
    )


def _html(path: str, handler: Callable[[Request], Response], summary: str) -> Endpoint:
    return Endpoint("GET", path, handler, summary, response="text/html", documented=False, tag="dashboard")


ENDPOINTS = [
    _html("/", index, "Pipelines"),
    _html("/pipelines/{name}", pipeline, "A pipeline: editor, trigger, history"),
    _html("/runs/{id}", run, "A run, live"),
    _html("/approvals", approvals, "Approval requests"),
    _html("/agents", agents, "Reported agent pipelines"),
    _html("/agents/{id}", agent, "A reported pipeline with its job logs"),
    _html("/metrics", metrics, "Metrics charts"),
]
