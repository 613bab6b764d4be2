"""The ASGI application of ``orchestrate serve``: routes, errors as JSON, auth, read-only mode.

Every route is declared once, as an ``Endpoint`` (routes.py, pages.py, sse.py): the
Starlette routing table and the OpenAPI document (openapi.py) are both built from
that list, so they cannot disagree. ``--read-only`` leaves every mutating endpoint
out of both: such a route does not exist, it is not merely refused.

Errors: a user mistake (``OrchestrateError``) becomes JSON ``{error, hint, lines,
issues}`` with the CLI's own message and a 4xx code: 422 an invalid definition
(``issues`` carry file, line, column and field), 404 an unknown name, 400 any other
mistake, 401 a missing or unknown token, 403 a refused approval vote, 409 a pipeline
that exists already.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrate.api.auth import Tokens
from orchestrate.domain.errors import NotFoundError, OrchestrateError, SpecError, UsageError

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store import Store

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
Handler = Callable[[Request], Any]


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # an OpenAPI type: string, integer, boolean, number
    description: str


@dataclass(frozen=True)
class Endpoint:
    """One route: how it is served and how the OpenAPI document describes it."""

    method: str
    path: str
    handler: Handler
    summary: str
    mutating: bool = False
    query: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # a JSON Schema of the request body
    response: str = "application/json"
    documented: bool = True  # dashboard pages are left out of /openapi.json
    tag: str = "api"


@dataclass
class Context:
    """What every request needs, made once at start (settings are resolved once: CONVENTIONS §11)."""

    settings: Settings
    store: Store
    tokens: Tokens
    read_only: bool
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    started_at: float = field(default_factory=time.time)


class Forbidden(OrchestrateError):
    """A vote or delegation the approval rules refuse (not eligible, already voted, decided)."""


class Conflict(OrchestrateError):
    """What the request would create exists already (409)."""


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def caller(request: Request) -> str:
    """The user of the request's bearer token; 401 without a valid one."""
    user = context(request).tokens.user_for(request.headers.get("authorization"))
    if user is None:
        raise HTTPException(
            401,
            "a valid bearer token is needed: Authorization: Bearer TOKEN (printed by orchestrate serve at start)",
            headers={"WWW-Authenticate": 'Bearer realm="orchestrate"'},
        )
    return user


def acting(request: Request) -> Settings:
    """The settings with the caller as the user: runs record who started them, votes who cast them."""
    return dataclasses.replace(context(request).settings, user=caller(request))


def status_for(exc: OrchestrateError) -> int:
    if isinstance(exc, SpecError):
        return 422
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    return 400


def error_body(exc: OrchestrateError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.message, "hint": exc.hint, "lines": exc.lines()}
    if isinstance(exc, SpecError):
        body["issues"] = [dataclasses.asdict(i) for i in exc.issues]
    return body


async def _user_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrchestrateError)
    return JSONResponse(error_body(exc), status_code=status_for(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail, "hint": None}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {
            "error": f"internal error: {type(exc).__name__}: {exc}",
            "hint": "this is a bug; see the server's output",
        },
        status_code=500,
    )


def require_json(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise UsageError("the request body must be a JSON object", hint='e.g. {"comment": "LGTM"}')
    return body


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    import json

    try:
        return require_json(json.loads(raw))
    except ValueError as e:
        raise UsageError(f"the request body is not valid JSON: {e}") from None


def host_name(header: str) -> str:
    """The name part of a Host header: "127.0.0.1:8080" -> "127.0.0.1", "[::1]:8080" -> "[::1]"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.split(":", 1)[0]


class HostCheck:
    """Refuse a request whose Host header is not served (400, a JSON error like every other)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.allowed:
            raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(raw) not in self.allowed:
                response = JSONResponse(
                    {
                        "error": f"Host header {raw!r} is not served here",
                        "hint": f"use one of: {', '.join(sorted(self.allowed))} "
                        "(orchestrate serve --host NAME serves another name)",
                    },
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def endpoints() -> list[Endpoint]:
    from orchestrate.api import pages, routes, sse

    return [*routes.ENDPOINTS, *sse.ENDPOINTS, *pages.ENDPOINTS]


def served(read_only: bool) -> list[Endpoint]:
    return [e for e in endpoints() if not (read_only and e.mutating)]


def _route(endpoint: Endpoint) -> Route:
    handler = endpoint.handler
    if endpoint.mutating:
        handler = _guarded(handler)
    return Route(endpoint.path, handler, methods=[endpoint.method])


def _guarded(handler: Handler) -> Handler:
    """Mutating routes check the token before anything else runs."""
    import inspect

    if inspect.iscoroutinefunction(handler):

        async def async_guard(request: Request) -> Any:
            caller(request)
            return await handler(request)

        return async_guard

    def guard(request: Request) -> Any:
        caller(request)
        return handler(request)

    return guard


def create_app(
    settings: Settings,
    store: Store,
    tokens: Tokens,
    *,
    read_only: bool = False,
    allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "[::1]"),
    env: Mapping[str, str] | None = None,
) -> Starlette:
    from orchestrate.api import openapi

    table = served(read_only)
    routes: list[BaseRoute] = [_route(e) for e in table]
    routes.append(Route("/openapi.json", openapi.handler(table), methods=["GET"]))
    routes.append(Mount("/static", app=StaticFiles(directory=WEB_DIR / "static"), name="static"))
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        OrchestrateError: _user_error,
        HTTPException: _http_error,
        Exception: _internal_error,
    }
    app = Starlette(
        routes=routes,
        # DNS rebinding: a web page may not reach this server through a name it controls.
        middleware=[Middleware(HostCheck, allowed_hosts=tuple(allowed_hosts))],
        exception_handlers=handlers,
    )
    app.state.ctx = Context(settings, store, tokens, read_only, dict(env if env is not None else os.environ))
    return app
