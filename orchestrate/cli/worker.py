"""``orchestrate worker``: the long-running part (DESIGN §9, issue 11)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.domain.status import ExitCode

if TYPE_CHECKING:
    from orchestrate.domain.state import RunState
    from orchestrate.settings import Settings
    from orchestrate.spec.model import PipelineSpec
    from orchestrate.store import Store


def _log(line: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sys.stdout.write(f"{stamp} {line}\n")
    sys.stdout.flush()


@handle_errors
def worker_command(
    max_runs: Annotated[
        int | None,
        typer.Option(
            "--max-runs", "-n", min=1, help="Runs alive at once (default: worker.max_runs, else 4)."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=0, max=65535, help="HTTP port for /wake, /health, /metrics (default 8091; 0: any)."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on (default 127.0.0.1: this machine only)."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass, then exit (runs started go on in the background).")
    ] = False,
    grace: Annotated[
        float | None,
        typer.Option("--grace", min=0, help="Seconds active runs get to finish after SIGTERM (default 60)."),
    ] = None,
) -> None:
    """Run what is due: cron schedules, queued runs, decided approvals, timeouts, orphaned runs.

    Runs start as background processes, at most --max-runs at once. The worker wakes at
    once on POST /wake (commands send it after queueing work), on a change in pipelines.d/
    and on a write to the store; otherwise it polls every worker.active_poll while busy and
    worker.idle_poll when idle. GET /health and GET /metrics report on it. SIGTERM (or
    Ctrl-C) stops taking work, lets active runs finish within the grace period, then stops
    them so the next worker resumes them. The clock schedules see can be set with
    ORCHESTRATE_NOW (ISO 8601 or epoch seconds), for rehearsals and tests.

    Examples:

      orchestrate worker

      orchestrate worker --max-runs 2 --port 8092

      orchestrate worker --once          # from cron: one pass, then exit

      curl -X POST http://127.0.0.1:8091/wake; curl http://127.0.0.1:8091/health
    """
    import os

    from orchestrate.domain.errors import UsageError
    from orchestrate.worker.config import env_now, worker_config
    from orchestrate.worker.schedules import is_rehearsal
    from orchestrate.worker.service import Worker

    s = settings()
    config = worker_config(s.config, os.environ, max_runs=max_runs, port=port, host=host, grace=grace)
    fixed = env_now(os.environ)
    if fixed is not None and is_rehearsal(fixed):
        raise UsageError(
            "ORCHESTRATE_NOW: a worker fires only slots that have come, and this time is ahead of the real one",
            hint="rehearse a future time with `orchestrate schedule tick --now TIME` (it records nothing)",
        )
    worker = Worker(s, config, clock=(lambda: fixed) if fixed is not None else time.time, log=_log)
    if once:
        worker.run_pass()
        _log(f"one pass done: started {len(worker.children) + worker.review_started} run(s)")
        return
    worker.run_forever()


def admit_or_queue(
    s: Settings, store: Store, state: RunState, spec: PipelineSpec, queue: bool, as_json: bool
) -> bool:
    """`pipeline run`: put the new run on the queue (--queue), or apply the pipeline's concurrency.

    True when the run should start now in this command; otherwise it was queued (exit 0)
    or skipped (exit 1), and that was said.
    """
    import os

    from orchestrate.services import concurrency
    from orchestrate.worker.wake import poke

    if queue:
        concurrency.queue(store, state.run_id)
        message = f"run {state.run_id} queued; `orchestrate worker` starts it"
        decision = concurrency.Decision.QUEUED
    else:
        admission = concurrency.admit(store, state.run_id, spec.name, spec.concurrency)
        message, decision = admission.message, admission.decision
    if decision is concurrency.Decision.START:
        if message:
            typer.echo(message, err=True)
        return True
    if decision is concurrency.Decision.QUEUED:
        woke = poke(s.config, os.environ)
        if not woke:
            message += " (no worker answered at the moment: start one with `orchestrate worker`)"
    if as_json:
        typer.echo(json.dumps({"id": state.run_id, "status": decision.value, "message": message}))
    else:
        typer.echo(state.run_id)
        typer.echo(message, err=True)
    if decision is concurrency.Decision.SKIPPED:
        raise typer.Exit(int(ExitCode.RUN_FAILED))
    return False
