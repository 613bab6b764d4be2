"""The JSON API: each handler parses the request, calls the service the CLI calls, returns JSON.

The JSON shapes are the CLI's ``--json`` shapes (``pipeline list``, ``pipeline show``,
``pipeline status``, ``pipeline history``, ``approval show``, ``metrics``, ``report``).
Handlers are plain functions: Starlette runs them in a worker thread, so the store's
blocking calls never stall the event loop (the live stream is async: sse.py).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrate.api.app import Conflict, Endpoint, Forbidden, Param, acting, caller, context, json_body
from orchestrate.domain.errors import NotFoundError, OrchestrateError, UsageError
from orchestrate.services.definitions import digest_of, display_path

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_TEXT_BODY = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string", "description": "The pipeline's YAML"}},
}


def _body(request: Request) -> dict[str, Any]:
    """The JSON body, read from this worker thread through the event loop."""
    import anyio.from_thread

    return anyio.from_thread.run(json_body, request)


def _pipeline_name(request: Request) -> str:
    name = request.path_params["name"]
    if not _NAME.fullmatch(name) or name.endswith((".yaml", ".yml")):
        raise UsageError(
            f"{name!r} is not a pipeline name",
            hint="names are lowercase letters, digits, '.', '_' and '-' (GET /api/pipelines lists them)",
        )
    return str(name)


def _query_int(request: Request, key: str, default: int) -> int:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"?{key}={raw!r}: expected a whole number") from None


def _query_bool(request: Request, key: str) -> bool:
    return request.query_params.get(key, "").lower() in ("1", "true", "yes", "on")


def _text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UsageError(
            'the body needs "text": the pipeline\'s YAML', hint='e.g. {"text": "name: ci\\nstages: ..."}'
        )
    return text


# -- pipelines -------------------------------------------------------------------------------


def list_pipelines(request: Request) -> Response:
    """``pipeline list --json``, read without registering anything (services/catalog.py)."""
    from orchestrate.services import catalog
    from orchestrate.services.records import listed_json

    ctx = context(request)
    return JSONResponse(
        [listed_json(r, registered=registered) for r, registered in catalog.listing(ctx.settings, ctx.store)]
    )


def pipeline_detail(settings: Any, store: Any, name: str, version: int | None) -> dict[str, Any]:
    """``pipeline show --json`` with the enabled flag, the variables the trigger form offers and,
    for a file that does not validate, its issues (the file's text is what the editor edits)."""
    import dataclasses

    from orchestrate.graph import Dag
    from orchestrate.services import catalog

    found = catalog.definition(settings, store, name, version)
    spec = found.spec
    dag = Dag.from_spec(spec) if spec is not None else None
    return {
        "name": name,
        "version": found.version,
        "versions": found.versions,
        "registered": found.registered,
        "path": found.path,
        "digest": digest_of(found.text),
        "text": found.text,
        "enabled": found.enabled,
        "description": spec.description if spec else None,
        "variables": dict(spec.variables) if spec else {},
        "stages": [{"name": n, "needs": list(dag.preds[n])} for n in dag.order] if dag else [],
        "levels": dag.levels() if dag else [],
        "error": str(found.issues[0]) if found.issues else None,
        "issues": [dataclasses.asdict(i) for i in found.issues],
    }


def get_pipeline(request: Request) -> Response:
    ctx = context(request)
    version = request.query_params.get("version")
    number = _query_int(request, "version", 0) if version else None
    return JSONResponse(pipeline_detail(ctx.settings, ctx.store, _pipeline_name(request), number))


def _validated(text: str, shown: str) -> Any:
    from orchestrate.spec.loader import load_pipeline_text

    return load_pipeline_text(text, shown)


def _declared(text: str) -> str | None:
    m = re.search(r"^name:\s*[\"']?([a-z0-9][a-z0-9._-]*)", text, re.M)
    return m.group(1) if m else None


def _with_file(text: str, name: str, shown: str, call: Any) -> Any:
    """Give a registry service (which takes a file, as the CLI does) the validated text.

    The file is a temporary one: its path never reaches the caller (a message naming it
    is rewritten to name ``shown``, the file it would become)."""
    with tempfile.TemporaryDirectory(prefix="orchestrate-api-") as folder:
        path = Path(folder) / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return call(path)
        except OrchestrateError as e:
            e.message = e.message.replace(str(path), shown)
            e.hint = e.hint.replace(str(path), shown) if e.hint else e.hint
            e.args = (e.message,)
            raise


def validate(request: Request) -> Response:
    """Check a definition without storing anything: the errors ``pipeline validate`` prints."""
    body = _body(request)
    text = _text(body)
    name = body.get("name") if isinstance(body.get("name"), str) else None
    shown = f"pipelines.d/{name or _declared(text) or 'pipeline'}.yaml"
    spec = _validated(text, shown)
    return JSONResponse({"valid": True, "name": spec.name, "stages": list(spec.stage_names)})


def create_pipeline(request: Request) -> Response:
    from orchestrate.services import catalog, registry

    ctx = context(request)
    text = _text(_body(request))
    declared = _declared(text) or "pipeline"
    shown = f"pipelines.d/{declared}.yaml"
    spec = _validated(text, shown)  # errors name the file it would become
    existing = catalog.file_of(ctx.settings, spec.name)
    if existing is not None:
        raise Conflict(
            f"pipeline {spec.name} already exists ({display_path(existing, ctx.settings.root)})",
            hint=f"change it with PUT /api/pipelines/{spec.name}, or give the new one another name",
        )
    created, version, target = _with_file(
        text, spec.name, shown, lambda p: registry.create(ctx.settings, ctx.store, p)
    )
    return JSONResponse(
        {"name": created.name, "version": version, "path": str(target.relative_to(ctx.settings.root))},
        status_code=201,
    )


def update_pipeline(request: Request) -> Response:
    """A new version of NAME, even when its file as it is now does not validate (that is how it is fixed)."""
    from orchestrate.services import catalog, registry

    ctx = context(request)
    name = _pipeline_name(request)
    text = _text(_body(request))
    target = catalog.file_of(ctx.settings, name)
    if target is None:
        if catalog.exists(ctx.settings, ctx.store, name):
            raise NotFoundError(
                f"pipeline {name} has no file in pipelines.d/ any more (removed by hand)",
                hint='create it again: POST /api/pipelines with {"text": ...}',
            )
        raise catalog.unknown(ctx.settings, ctx.store, name)
    shown = display_path(target, ctx.settings.root)
    spec = _validated(text, shown)
    if spec.name != name:
        raise UsageError(
            f'"text" defines pipeline {spec.name}, not {name}',
            hint=f"keep name: {name}, or create {spec.name} with POST /api/pipelines",
        )
    updated, version, changed = _with_file(
        text, name, shown, lambda p: registry.update(ctx.settings, ctx.store, name, p)
    )
    return JSONResponse({"name": updated.name, "version": version, "changed": changed})


def delete_pipeline(request: Request) -> Response:
    from orchestrate.services import registry

    ctx = context(request)
    name = _pipeline_name(request)
    path = registry.delete(ctx.settings, ctx.store, name)
    shown = str(path.relative_to(ctx.settings.root)) if path else None
    return JSONResponse({"name": name, "deleted": True, "removed_file": shown})


def run_pipeline(request: Request) -> Response:
    """Start a run in the background, exactly as ``pipeline run NAME --detach`` does."""
    from orchestrate.services import runs

    ctx = context(request)
    name = _pipeline_name(request)
    settings = acting(request)
    body = _body(request)
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise UsageError(
            '"variables" must map names to values', hint='e.g. {"variables": {"environment": "prod"}}'
        )
    for key, value in variables.items():
        # bool is an int to Python: true would become "True"; say what to send instead.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise UsageError(
                f'"variables.{key}": {json.dumps(value)} is not a string or a number',
                hint=f'send it as a string: {{"variables": {{"{key}": "..."}}}}',
            )
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise UsageError(
            f'"version": {json.dumps(version)} is not a whole number', hint='e.g. {"version": 3}'
        )
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise UsageError(f'"force": {json.dumps(force)} is not true or false', hint='e.g. {"force": true}')
    store, state, _ = runs.prepare(
        settings,
        name,
        {str(k): str(v) for k, v in variables.items()},
        version=version,
        force=force,
        env=ctx.env,
    )
    try:
        pid = runs.detach(settings, state.run_id, None)
    finally:
        store.close()
    return JSONResponse(
        {"id": state.run_id, "pid": pid, "status": "pending", "started_by": settings.user},
        status_code=202,
    )


def pipeline_runs(request: Request) -> Response:
    from orchestrate.services import catalog, control

    ctx = context(request)
    store = ctx.store
    name = _pipeline_name(request)
    try:
        found = control.history(
            store, name, _query_int(request, "limit", 20), request.query_params.get("status") or None
        )
    except NotFoundError:
        if not catalog.exists(ctx.settings, store, name):
            raise catalog.unknown(ctx.settings, store, name) from None
        found = []  # a file not run (nor registered) yet
    except UsageError as e:
        _query_words(e)
        raise
    usage = store.run_usage([r.id for r in found])
    now = time.time()
    return JSONResponse(
        [
            r.__dict__
            | {
                "status": r.status.value,
                "duration_seconds": r.duration(now),
                "tokens": usage.get(r.id, (0, 0.0))[0],
                "cost_usd": usage.get(r.id, (0, 0.0))[1],
            }
            for r in found
        ]
    )


# -- runs --------------------------------------------------------------------------------------


def run_detail(settings: Any, store: Any, run_ref: str) -> dict[str, Any]:
    """``pipeline status --json`` (kind, orphaned, stale, overdue), plus usage per stage and in
    total (what ``pipeline status`` shows), the run's stage graph and its approval requests."""
    from orchestrate.domain.usage import total_usage, usage_json
    from orchestrate.graph import Dag
    from orchestrate.services import freshness
    from orchestrate.services.control import orphaned
    from orchestrate.services.execution import run_spec
    from orchestrate.services.records import request_json

    run_id = store.resolve_run_id(run_ref)
    state = store.run_state(run_id)
    record = {"kind": "executed"} | store.run_record(run_id)
    record["orphaned"] = orphaned(state)
    record |= freshness.of_run(store, state, freshness.thresholds(settings)).as_json()
    for stage in record["stages"]:
        stage["usage"] = usage_json(stage["outputs"])
    tokens, cost = total_usage(s["outputs"] for s in record["stages"])
    record["usage"] = {"tokens": tokens, "cost_usd": round(cost, 6)}
    dag = Dag.from_spec(run_spec(store, state))
    record["graph"] = {"levels": dag.levels(), "needs": {n: list(dag.preds[n]) for n in dag.order}}
    record["approvals"] = [
        request_json(r) for name in state.stages for r in store.stage_approvals(run_id, name)
    ]
    return record


def get_run(request: Request) -> Response:
    ctx = context(request)
    return JSONResponse(run_detail(ctx.settings, ctx.store, request.path_params["id"]))


def cancel_run(request: Request) -> Response:
    from orchestrate.services import control

    user = caller(request)
    state = control.cancel(context(request).store, request.path_params["id"], user, wait=5.0)
    return JSONResponse(
        {"id": state.run_id, "status": state.status.value, "reason": state.reason, "requested_by": user}
    )


def _confined(settings: Any, path: str) -> Path:
    """A log file named by the store, refused unless it lies inside the workspace's logs/ folder."""
    logs = settings.logs_dir.resolve()
    resolved = (settings.root / path).resolve()
    if not resolved.is_relative_to(logs):
        raise Forbidden(
            f"log path {path!r} is outside {logs}; refusing to read it",
            hint="logs are served from the workspace's logs/ folder only",
        )
    return resolved


def run_logs(request: Request) -> Response:
    from orchestrate.services import logs as stage_logs

    ctx = context(request)
    run_id = ctx.store.resolve_run_id(request.path_params["id"])
    found = stage_logs.stage_logs(ctx.store.run_state(run_id), None)
    return JSONResponse(
        [
            {
                "stage": log.stage,
                "attempts": log.attempts,
                "url": f"/api/pipeline-runs/{run_id}/logs/{log.stage}",
            }
            for log in found
        ]
    )


def stage_log(request: Request) -> Response:
    from orchestrate.services import logs as stage_logs

    ctx = context(request)
    run_id = ctx.store.resolve_run_id(request.path_params["id"])
    chosen = stage_logs.stage_logs(ctx.store.run_state(run_id), request.path_params["stage"])
    if not chosen:
        return Response(b"", media_type="text/plain; charset=utf-8")
    path = _confined(ctx.settings, chosen[0].path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{chosen[0].path}: the log is gone (removed by hand or by gc)") from None
    if request.query_params.get("attempt"):
        data = stage_logs.attempt_section(data, _query_int(request, "attempt", 1))
    return Response(data, media_type="text/plain; charset=utf-8")


# -- approvals ---------------------------------------------------------------------------------


def list_approvals(request: Request) -> Response:
    from orchestrate.services.records import request_json

    # A read writes nothing: unlike `approval list`, deadlines are not enforced here (the
    # run's own process, or `orchestrate worker` for runs whose process is gone, does that).
    ctx = context(request)
    pending = request.query_params.get("pending", "true").lower() not in ("0", "false", "no")
    found = ctx.store.approval_requests(pending_only=pending, limit=_query_int(request, "limit", 50))
    return JSONResponse([request_json(r) for r in found])


def get_approval(request: Request) -> Response:
    from orchestrate.services.records import request_json

    store = context(request).store
    found = store.approval(request.path_params["id"])
    return JSONResponse(request_json(found, store.approval_audit(found.id)))


def _decide(request: Request, action: str, call: Any) -> Response:
    """Cast a vote as the token's user; a vote the rules refuse is 403 (and audited, as on the CLI)."""
    from orchestrate.domain.approvals import refusal
    from orchestrate.services.records import request_json

    user = caller(request)
    body = _body(request)
    store = context(request).store
    try:
        decided = call(store, request.path_params["id"], user, body)
    except UsageError as e:
        _json_words(e)
        found = store.approval(request.path_params["id"])
        if refusal(found, store.approval_audit(found.id), user, action) is not None:
            raise Forbidden(e.message, e.hint) from None
        raise
    return JSONResponse(request_json(decided) | {"by": user})


def _account(user: str) -> str:
    """The audit trail's os_user for a vote over HTTP: the token's user, marked as such
    (the server's own OS account says nothing about who voted)."""
    return f"api:{user}"


def _required(text: str, key: str, action: str) -> str:
    if not text.strip():
        raise UsageError(f'"{key}" is required to {action}', hint=f'e.g. {{"{key}": "needs more testing"}}')
    return text


_FLAG = re.compile(r"--([a-z][a-z-]*)")


def _json_words(e: OrchestrateError) -> None:
    """A service's message names CLI flags (--rewind-to); over HTTP they are JSON fields ("rewind_to")."""
    e.message = _FLAG.sub(lambda m: '"' + m.group(1).replace("-", "_") + '"', e.message)
    e.hint = _FLAG.sub(lambda m: '"' + m.group(1).replace("-", "_") + '"', e.hint) if e.hint else e.hint
    e.args = (e.message,)


def _query_words(e: OrchestrateError) -> None:
    """A service's message names CLI options (--since "x"); over HTTP they are query parameters (?since=x)."""
    quoted = re.compile(r"""--([a-z][a-z-]*) (["'])(.*?)\2""")
    e.message = _FLAG.sub(r"?\1", quoted.sub(r"?\1=\3", e.message))
    e.hint = _FLAG.sub(r"?\1", quoted.sub(r"?\1=\3", e.hint)) if e.hint else e.hint
    e.args = (e.message,)


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f'"{key}" must be a string')
    return value


def approve(request: Request) -> Response:
    from orchestrate.services import approvals

    return _decide(
        request,
        "approve",
        lambda store, rid, user, body: approvals.approve(
            store, rid, user, _optional_text(body, "comment"), account=_account(user)
        ),
    )


def reject(request: Request) -> Response:
    from orchestrate.services import approvals

    def call(store: Any, rid: str, user: str, body: dict[str, Any]) -> Any:
        reason = _optional_text(body, "reason") or _optional_text(body, "comment") or ""
        return approvals.reject(
            store, rid, user, _required(reason, "reason", "reject"), account=_account(user)
        )

    return _decide(request, "reject", call)


def delegate(request: Request) -> Response:
    from orchestrate.services import approvals

    def call(store: Any, rid: str, user: str, body: dict[str, Any]) -> Any:
        to = (_optional_text(body, "to") or "").strip()
        if not to:
            raise UsageError('"to" is required: the user who gets your vote', hint='e.g. {"to": "carol"}')
        return approvals.delegate(store, rid, user, to, account=_account(user))

    return _decide(request, "delegate", call)


def push_back(request: Request) -> Response:
    from orchestrate.services import approvals

    def call(store: Any, rid: str, user: str, body: dict[str, Any]) -> Any:
        reason = _required(_optional_text(body, "reason") or "", "reason", "push back")
        rewind_to = _optional_text(body, "rewind_to")
        return approvals.push_back(store, rid, user, reason, rewind_to, account=_account(user))

    return _decide(request, "push-back", call)


def whoami(request: Request) -> Response:
    return JSONResponse({"user": caller(request), "read_only": context(request).read_only})


# -- metrics and reported work ---------------------------------------------------------------


def _metric_filters(request: Request) -> tuple[float | None, str | None, str | None]:
    from orchestrate.metrics import service

    since = request.query_params.get("since") or None
    try:
        return (
            None if since is None else service.parse_since(since),
            request.query_params.get("pipeline") or None,
            request.query_params.get("status") or None,
        )
    except UsageError as e:
        _query_words(e)
        raise


def metrics(request: Request) -> Response:
    from orchestrate.metrics import service

    since, pipeline, status = _metric_filters(request)
    by = request.query_params.get("by") or None
    try:
        return JSONResponse(service.summarize(context(request).store, since, pipeline, status, by))
    except UsageError as e:
        _query_words(e)
        raise


def metrics_daily(request: Request) -> Response:
    from orchestrate.metrics.timeline import daily_percentiles

    since, pipeline, status = _metric_filters(request)
    days = _query_int(request, "days", 14)
    if not 1 <= days <= 366:
        raise UsageError(f"?days={days}: between 1 and 366")
    return JSONResponse(daily_percentiles(context(request).store, since, pipeline, status, days=days))


def reported_pipelines(request: Request) -> Response:
    from orchestrate.domain.observe import parse_status, parse_type
    from orchestrate.observe import records, service

    ctx = context(request)
    q = request.query_params
    page = service.list_pipelines(
        ctx.settings,
        ctx.store,
        status=parse_status(q["status"]) if q.get("status") else None,
        type=parse_type(q["type"]) if q.get("type") else None,
        sprint=q.get("sprint") or None,
        stale=_query_bool(request, "stale"),
        limit=_query_int(request, "limit", 20),
        offset=_query_int(request, "offset", 0),
    )
    return JSONResponse(records.page_json(page, ctx.settings.root))


def reported_pipeline(request: Request) -> Response:
    from orchestrate.observe import records, service

    ctx = context(request)
    found = service.get_pipeline(ctx.store, request.path_params["id"])
    return JSONResponse(
        records.pipeline_json(found, ctx.settings.root, time.time(), service.stale_after(ctx.settings))
    )


def job_log(settings: Any, store: Any, job_ref: str) -> Any:
    """The job's markdown log, after checking that the path the store holds stays in logs/."""
    from orchestrate.observe import service

    job = store.reports().job(job_ref)
    if job.log_path is not None:
        _confined(settings, job.log_path)
    return service.job_log(settings, store, job.id)


def reported_job_log(request: Request) -> Response:
    from orchestrate.observe import records

    ctx = context(request)
    log = job_log(ctx.settings, ctx.store, request.path_params["id"])
    return JSONResponse(records.job_json(log.job, ctx.settings.root, time.time()) | records.job_log_json(log))


Q = Param
ENDPOINTS = [
    Endpoint("GET", "/api/pipelines", list_pipelines, "Pipelines: enabled, version, last run, success rate"),
    Endpoint(
        "POST",
        "/api/pipelines",
        create_pipeline,
        "Create a pipeline from YAML (validated)",
        True,
        body=_TEXT_BODY,
    ),
    Endpoint("POST", "/api/validate", validate, "Validate a pipeline's YAML; store nothing", body=_TEXT_BODY),
    Endpoint(
        "GET",
        "/api/pipelines/{name}",
        get_pipeline,
        "A pipeline's definition and stage graph",
        query=(Q("version", "integer", "a stored version (default: the file as it is now)"),),
    ),
    Endpoint(
        "PUT",
        "/api/pipelines/{name}",
        update_pipeline,
        "Replace a definition: a new version",
        True,
        body=_TEXT_BODY,
    ),
    Endpoint(
        "DELETE", "/api/pipelines/{name}", delete_pipeline, "Delete a pipeline (its history stays)", True
    ),
    Endpoint(
        "POST",
        "/api/pipelines/{name}/run",
        run_pipeline,
        "Start a run in the background (as pipeline run --detach)",
        True,
        body={
            "type": "object",
            "properties": {
                "variables": {"type": "object", "additionalProperties": {"type": "string"}},
                "version": {"type": "integer"},
                "force": {"type": "boolean", "description": "run even if disabled"},
            },
        },
    ),
    Endpoint(
        "GET",
        "/api/pipelines/{name}/runs",
        pipeline_runs,
        "A pipeline's runs, newest first",
        query=(Q("limit", "integer", "how many (20)"), Q("status", "string", "only this run status")),
    ),
    Endpoint(
        "GET", "/api/pipeline-runs/{id}", get_run, "A run: stages, attempts, outputs, usage, graph, approvals"
    ),
    Endpoint("POST", "/api/pipeline-runs/{id}/cancel", cancel_run, "Cancel a run", True),
    Endpoint("GET", "/api/pipeline-runs/{id}/logs", run_logs, "The stages that have logs"),
    Endpoint(
        "GET",
        "/api/pipeline-runs/{id}/logs/{stage}",
        stage_log,
        "A stage's log (text)",
        query=(Q("attempt", "integer", "only this attempt's output"),),
        response="text/plain",
    ),
    Endpoint(
        "GET",
        "/api/approvals",
        list_approvals,
        "Approval requests, newest first",
        query=(
            Q("pending", "boolean", "only pending ones (default true)"),
            Q("limit", "integer", "at most N"),
        ),
    ),
    Endpoint("GET", "/api/approvals/{id}", get_approval, "An approval request with its audit trail"),
    Endpoint(
        "POST",
        "/api/approvals/{id}/approve",
        approve,
        "Vote to approve, as the token's user",
        True,
        body={"type": "object", "properties": {"comment": {"type": "string"}}},
    ),
    Endpoint(
        "POST",
        "/api/approvals/{id}/reject",
        reject,
        "Reject, as the token's user",
        True,
        body={"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}},
    ),
    Endpoint(
        "POST",
        "/api/approvals/{id}/delegate",
        delegate,
        "Hand the token user's vote to another user",
        True,
        body={"type": "object", "required": ["to"], "properties": {"to": {"type": "string"}}},
    ),
    Endpoint(
        "POST",
        "/api/approvals/{id}/push-back",
        push_back,
        "Send the work back with feedback",
        True,
        body={
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": {"type": "string"}, "rewind_to": {"type": "string"}},
        },
    ),
    Endpoint("GET", "/api/me", whoami, "The user of the bearer token"),
    Endpoint(
        "GET",
        "/api/agent/metrics",
        metrics,
        "The metrics contract (DESIGN §8), as orchestrate metrics --json",
        query=(
            Q("since", "string", "30m, 24h, 7d or a date"),
            Q("pipeline", "string", "only this pipeline"),
            Q("status", "string", "completed, failed, cancelled or timed_out"),
            Q("by", "string", "task_type, model, executor, pipeline, stage or variant"),
        ),
    ),
    Endpoint(
        "GET",
        "/api/agent/metrics/daily",
        metrics_daily,
        "Duration P50/P95 per day",
        query=(Q("days", "integer", "how many days (14)"), Q("pipeline", "string", "only this pipeline")),
    ),
    Endpoint(
        "GET",
        "/api/agent/pipelines",
        reported_pipelines,
        "Reported agent pipelines, newest first, stale ones flagged",
        query=(
            Q("status", "string", "only this status"),
            Q("type", "string", "ticket_work, sprint_close or custom"),
            Q("sprint", "string", "only this sprint"),
            Q("stale", "boolean", "only stale ones"),
            Q("limit", "integer", "at most N (20)"),
            Q("offset", "integer", "skip the newest N"),
        ),
    ),
    Endpoint("GET", "/api/agent/pipelines/{id}", reported_pipeline, "A reported pipeline: steps and jobs"),
    Endpoint("GET", "/api/agent/jobs/{id}/log", reported_job_log, "A reported job and its markdown log"),
]
