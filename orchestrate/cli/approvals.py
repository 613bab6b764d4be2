"""``orchestrate approval …``: decide the gates runs wait at, from any terminal (DESIGN §4)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.services.records import request_json

app = typer.Typer(
    help="Approve, reject, delegate or push back the requests runs wait at.\n\n"
    "Example:\n\n  orchestrate approval list --pending",
    no_args_is_help=True,
)

RequestId = Annotated[str, typer.Argument(help="Request id (a unique prefix is enough).")]
As = Annotated[
    str | None, typer.Option("--as", help="Decide as this user (default: ORCHESTRATE_USER, else you).")
]


def _open():  # type: ignore[no-untyped-def]
    from orchestrate.services.approvals import expire_due
    from orchestrate.store import open_store

    s = settings()
    store = open_store(s.store_location)
    expire_due(s, store)  # deadlines of runs whose process is gone are enforced here too
    return s, store


@app.command("list")
@handle_errors
def list_(
    pending: Annotated[bool, typer.Option("--pending", help="Only requests still waiting.")] = False,
    mine: Annotated[bool, typer.Option("--mine", help="Only requests you may decide now.")] = False,
    as_user: As = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Approval requests, newest first.

    Examples:

      orchestrate approval list --pending

      orchestrate approval list --mine --as alice
    """
    from orchestrate.domain.approvals import refusal

    s, store = _open()
    user = as_user or s.user
    requests = store.approval_requests(pending_only=pending or mine)
    if mine:
        requests = [r for r in requests if refusal(r, store.approval_audit(r.id), user, "approve") is None]
    if as_json:
        typer.echo(json.dumps([request_json(r) for r in requests], indent=2))
        return
    from orchestrate.ui.approval_view import request_table
    from orchestrate.ui.console import stdout_console

    stdout_console().print(request_table(requests, time.time()))


@app.command("show")
@handle_errors
def show(
    request_id: RequestId, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """A request: run, stage, approvers, quorum, votes, deadline, evidence and the audit trail.

    Example:

      orchestrate approval show 01m80d
    """
    from orchestrate.domain.approvals import tally

    _, store = _open()
    request = store.approval(request_id)
    audit = store.approval_audit(request.id)
    if as_json:
        typer.echo(json.dumps(request_json(request, audit), indent=2))
        return
    from orchestrate.ui.approval_view import request_detail
    from orchestrate.ui.console import stdout_console

    stdout_console().print(request_detail(request, audit, tally(request, audit), time.time()))


def _said(request: Any, verb: str) -> None:
    if request.status.value == "pending":
        typer.echo(f"{verb}; request {request.id} still waits ({request.stage} of run {request.run_id})")
    else:
        typer.echo(
            f"{verb}; request {request.id} is {request.status.value} ({request.stage} of run {request.run_id})"
        )
        import os

        from orchestrate.worker.wake import poke

        poke(settings().config, os.environ)  # a worker continues a run whose process is gone at once


@app.command("approve")
@handle_errors
def approve(
    request_id: RequestId,
    comment: Annotated[
        str | None, typer.Option("--comment", help="Said with the vote, kept in the audit.")
    ] = None,
    as_user: As = None,
) -> None:
    """Vote to approve; `quorum` approvals approve the request and the run goes on within a second.

    Example:

      orchestrate approval approve 01m80d --comment "LGTM"
    """
    from orchestrate.services import approvals

    s, store = _open()
    _said(
        approvals.approve(store, request_id, as_user or s.user, comment), f"approved by {as_user or s.user}"
    )


@app.command("reject")
@handle_errors
def reject(
    request_id: RequestId,
    reason: Annotated[str, typer.Option("--reason", help="Why: the stage fails with it.")],
    as_user: As = None,
) -> None:
    """Reject: one rejection rejects the request; the stage fails with the reason.

    Example:

      orchestrate approval reject 01m80d --reason "Needs more testing"
    """
    from orchestrate.services import approvals

    s, store = _open()
    _said(approvals.reject(store, request_id, as_user or s.user, reason), f"rejected by {as_user or s.user}")


@app.command("delegate")
@handle_errors
def delegate(
    request_id: RequestId,
    to: Annotated[str, typer.Option("--to", help="The user who gets your vote on this request.")],
    as_user: As = None,
) -> None:
    """Hand your vote on this request to another user (who becomes eligible for it).

    Example:

      orchestrate approval delegate 01m80d --to carol
    """
    from orchestrate.services import approvals

    s, store = _open()
    _said(
        approvals.delegate(store, request_id, as_user or s.user, to), f"{as_user or s.user} delegated to {to}"
    )


@app.command("push-back")
@handle_errors
def push_back(
    request_id: RequestId,
    reason: Annotated[str, typer.Option("--reason", help="Feedback for the stages that run again.")],
    rewind_to: Annotated[
        str | None,
        typer.Option("--rewind-to", help="Run again from this stage (default: approval.rewind_to)."),
    ] = None,
    as_user: As = None,
) -> None:
    """Send the work back: re-run from a stage up to the gate with your feedback, then ask again.

    The stages see the feedback as ${approval.feedback} and the round as ${approval.iteration}.

    Example:

      orchestrate approval push-back 01m80d --reason "add tests for the parser" --rewind-to coding
    """
    from orchestrate.services import approvals

    s, store = _open()
    request = approvals.push_back(store, request_id, as_user or s.user, reason, rewind_to)
    _said(request, f"pushed back by {as_user or s.user}")
