"""``orchestrate serve``: the REST API and the live web dashboard, over this workspace's store."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_port(host: str, port: int) -> None:
    """Bind once to find out, before serving, whether --host and --port can be listened on."""
    import errno
    import socket

    from orchestrate.domain.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as e:  # a name that does not resolve
            raise UsageError(
                f"--host {host}: not an address of this machine ({e.strerror})",
                hint="use an IP address or a name of this machine, e.g. --host 127.0.0.1",
            ) from None
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:  # resolves, but is not one of ours
                raise UsageError(
                    f"--host {host}: not an address of this machine ({e.strerror})",
                    hint="use an address this machine has, e.g. --host 127.0.0.1 or --host 0.0.0.0",
                ) from None
            raise UsageError(
                f"--port {port}: cannot listen on {host}:{port} ({e.strerror})",
                hint=f"pick another port: orchestrate serve --port {port + 1}",
            ) from None


@handle_errors
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on. Anything but loopback exposes the API.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port to listen on.")] = 8080,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Serve no mutating route: look, never touch.")
    ] = False,
) -> None:
    """Serve the REST API (/api, /openapi.json) and the live web dashboard on 127.0.0.1.

    Reads need no token. Mutating calls (run, cancel, approve, edit) need
    `Authorization: Bearer TOKEN`: tokens map to users, from ORCHESTRATE_API_TOKENS
    (TOKEN=USER,...), orchestrate.yaml `serve: {tokens: {TOKEN: USER}}`, or
    ORCHESTRATE_API_TOKEN (as you); with none, one is generated for you and printed.
    Ctrl-C stops it; runs it started go on in the background.

    Examples:

      orchestrate serve                       # then open the printed URL

      orchestrate serve --port 9000 --read-only

      ORCHESTRATE_API_TOKENS="$ALICE_TOKEN=alice,$BOB_TOKEN=bob" orchestrate serve
    """
    import uvicorn

    from orchestrate.api.app import create_app
    from orchestrate.api.auth import load_tokens
    from orchestrate.store import open_store

    s = settings()
    tokens = load_tokens(s.config, os.environ, s.user)
    _check_port(host, port)
    loopback = host in LOOPBACK
    allowed = ("127.0.0.1", "localhost", "[::1]") if loopback else ("*",)
    app = create_app(s, open_store(s.store_location), tokens, read_only=read_only, allowed_hosts=allowed)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    typer.echo(f"orchestrate serve: {url} (workspace {s.root}{', read-only' if read_only else ''})")
    if tokens.generated and not read_only:
        typer.echo(f"token for {s.user}: {tokens.generated}")
        typer.echo(f"open: {url}?token={tokens.generated}")
    elif not read_only:
        typer.echo(
            f"tokens: {len(tokens.users)} configured (users: {', '.join(sorted(set(tokens.users.values())))})"
        )
    if not loopback:
        typer.echo(f"warning: listening on {host}: anyone who can reach it can read every run", err=True)
    sys.stdout.flush()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run()
