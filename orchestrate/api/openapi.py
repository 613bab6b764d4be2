"""``GET /openapi.json``: the OpenAPI 3.1 document, built from the same Endpoint list as the routes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrate import __version__
from orchestrate.api.app import Endpoint

_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "the CLI's message"},
        "hint": {"type": ["string", "null"]},
        "lines": {"type": "array", "items": {"type": "string"}},
        "issues": {
            "type": "array",
            "description": "an invalid definition: one entry per problem",
            "items": {
                "type": "object",
                "properties": {
                    "file": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "column": {"type": ["integer", "null"]},
                    "path": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": ["string", "null"]},
                },
            },
        },
    },
}


def _operation(e: Endpoint) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", e.path)
    ]
    params += [
        {
            "name": p.name,
            "in": "query",
            "required": False,
            "description": p.description,
            "schema": {"type": p.type},
        }
        for p in e.query
    ]
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op: dict[str, Any] = {
        "summary": e.summary,
        "operationId": f"{e.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', e.path.lower()).strip('_')}",
        "tags": [e.tag],
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": {e.response: {}}},
            "400": {"description": "invalid input", **error},
            "404": {"description": "unknown name or id", **error},
        },
    }
    if e.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(e.body)}}}
        op["responses"]["422"] = {"description": "invalid definition (issues with file:line:column)", **error}
    if e.mutating:
        op["security"] = [{"bearer": []}]
        op["responses"]["401"] = {"description": "no valid bearer token", **error}
        op["responses"]["403"] = {"description": "refused (approval rules, a log outside logs/)", **error}
    return op


def document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        if e.documented:
            paths.setdefault(e.path, {})[e.method.lower()] = _operation(e)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "orchestrate",
            "version": __version__,
            "description": "The REST API of orchestrate serve. Mutating calls need Authorization: Bearer TOKEN.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def handler(endpoints: Sequence[Endpoint]) -> Any:
    body = document(endpoints)

    def openapi(request: Request) -> Response:
        return JSONResponse(body)

    return openapi
