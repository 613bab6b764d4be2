"""``GET /api/events``: run and stage transitions as Server-Sent Events, tailing run_events.

Each stored transition is one event: ``id`` is its run_events id (a global order, so a
reconnecting browser sends ``Last-Event-ID`` and misses nothing), ``event`` its kind
(run_started, stage_started, stage_finished, stage_waiting, ...) and ``data`` the JSON
``{id, run_id, at, kind, ...payload}``. Without ``after``/``Last-Event-ID`` the stream
starts at the newest event: only what happens from now on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from orchestrate.api.app import Endpoint, Param, context
from orchestrate.domain.errors import UsageError

POLL = 0.25  # seconds between looks at the store: a transition shows within a quarter second
KEEP_ALIVE = 15.0  # a comment line now and then, so proxies and browsers keep the stream open


async def stream(request: Request) -> Response:
    from orchestrate.store.live import events_after, last_event_id

    store = context(request).store
    raw = request.query_params.get("after") or request.headers.get("last-event-id")
    try:
        after = int(raw) if raw else None
    except ValueError:
        raise UsageError(f"after={raw!r}: expected an event id (a whole number)") from None
    run = request.query_params.get("run") or None
    if run is not None:
        run = await anyio.to_thread.run_sync(store.resolve_run_id, run)  # 404 for an unknown run
    if after is None:
        after = await anyio.to_thread.run_sync(last_event_id, store)

    async def events() -> AsyncIterator[str]:
        last = after
        yield "retry: 1000\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            found = await anyio.to_thread.run_sync(events_after, store, last, run)
            for e in found:
                data = {"id": e.id, "run_id": e.run_id, "at": e.at, "kind": e.kind, **e.payload}
                yield f"id: {e.id}\nevent: {e.kind}\ndata: {json.dumps(data)}\n\n"
                last = e.id
            if found:
                quiet = 0.0
                continue
            quiet += POLL
            if quiet >= KEEP_ALIVE:
                yield ": keep-alive\n\n"
                quiet = 0.0
            await anyio.sleep(POLL)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/events",
        stream,
        "Live run and stage transitions (Server-Sent Events)",
        query=(
            Param("run", "string", "only this run's events (an id or unique prefix)"),
            Param("after", "integer", "replay events after this id (also: the Last-Event-ID header)"),
        ),
        response="text/event-stream",
    )
]
