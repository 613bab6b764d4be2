"""The worker's HTTP side: ``POST /wake``, ``GET /health``, ``GET /metrics``, on 127.0.0.1 by default.

The standard library's threading HTTP server, in a daemon thread beside the loop: three
tiny endpoints need no ASGI stack or event loop, start in a millisecond, and share the
loop's objects directly (the store connection is guarded by its own lock). Nothing here
changes state except setting the loop's wake-up event.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import UsageError

if TYPE_CHECKING:
    from orchestrate.worker.service import Worker


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    worker: Worker


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "orchestrate-worker"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the worker logs what it does, not every request

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, data: Any) -> None:
        self._send(code, (json.dumps(data) + "\n").encode(), "application/json")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/wake":
            self._json(404, {"error": f"no such endpoint: POST {path}", "endpoints": _ENDPOINTS})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 65536))
        self.server.worker.request_wake()
        self._json(202, {"woken": True})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/health":
                self._json(200, self.server.worker.health())
            elif path == "/metrics":
                from orchestrate.worker.metrics import CONTENT_TYPE, render

                self._send(200, render(self.server.worker), CONTENT_TYPE)
            else:
                self._json(404, {"error": f"no such endpoint: GET {path}", "endpoints": _ENDPOINTS})
        except Exception as e:  # a failing read must answer, not drop the connection
            self._json(500, {"error": f"{type(e).__name__}: {e}"})


_ENDPOINTS = ["POST /wake", "GET /health", "GET /metrics"]


def serve(worker: Worker, host: str, port: int) -> _Server:
    """Listen (port 0: any free port) and answer in a daemon thread; the caller shuts it down."""
    try:
        server = _Server((host, port), _Handler)
    except OSError as e:
        raise UsageError(
            f"worker: cannot listen on {host}:{port}: {e.strerror or e}",
            hint="another worker may be running (curl http://127.0.0.1:8091/health); "
            "or choose another port: orchestrate worker --port 8092",
        ) from None
    server.worker = worker
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
