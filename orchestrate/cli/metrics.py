"""``orchestrate metrics [record]``: durations, success rates, usage and cost of tasks (DESIGN §8)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings

# Its help is the callback's docstring; `orchestrate metrics` alone shows the metrics.
app = typer.Typer(invoke_without_command=True, no_args_is_help=False, add_completion=False)

Opt = typer.Option


@app.callback(invoke_without_command=True)
@handle_errors
def metrics(
    ctx: typer.Context,
    since: Annotated[
        str | None, Opt("--since", help="Only tasks finished since: 30m, 24h, 7d, or a date (2026-05-01).")
    ] = None,
    pipeline: Annotated[str | None, Opt("--pipeline", help="Only tasks of this pipeline.")] = None,
    status: Annotated[
        str | None,
        Opt("--status", help="Only completed, failed (timed_out included), cancelled or timed_out tasks."),
    ] = None,
    by: Annotated[
        str | None,
        Opt("--by", help="Break down by task_type, model, executor, pipeline, stage or variant."),
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the metrics contract as JSON.")] = False,
    watch: Annotated[bool, Opt("--watch", help="Refresh every 2 s until Ctrl-C.")] = False,
) -> None:
    """P50/P95/P99 execution time, success rate, tokens and cost of every recorded task.

    Every finished stage attempt records a task; agent runners outside any pipeline add
    theirs with `orchestrate metrics record`. Percentiles are nearest-rank; the success
    rate is completed / (completed + failed), timed_out counting as failed and cancelled
    tasks left out. `--json` prints execution_time, success_rate, usage, by_task_type,
    by_model, daily (and group_by with --by).

    Examples:

      orchestrate metrics

      orchestrate metrics --since 7d --by model

      orchestrate metrics --pipeline ci --status failed --json

      orchestrate metrics --by variant --watch
    """
    if ctx.invoked_subcommand is not None:
        return
    from orchestrate.domain.errors import UsageError
    from orchestrate.domain.metrics import parse_metric_status
    from orchestrate.metrics import service
    from orchestrate.store import open_store

    if watch and as_json:
        raise UsageError("--watch and --json do not go together")
    since_at = None if since is None else service.parse_since(since)
    if by is not None:  # bad input fails before anything is opened
        service.parse_by(by)
    if status is not None:
        parse_metric_status(status)
    store = open_store(settings().store_location)

    def summary() -> dict[str, object]:
        return service.summarize(store, since_at, pipeline, status, by)

    if as_json:
        typer.echo(json.dumps(summary(), indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.metrics_view import metrics_view, watch_metrics

    if watch:
        watch_metrics(stdout_console(), lambda: metrics_view(summary()))
    else:
        stdout_console().print(metrics_view(summary()))


@app.command("record")
@handle_errors
def record(
    task_type: Annotated[str, Opt("--task-type", help="What kind of task: spec, impl, review...")],
    duration: Annotated[float, Opt("--duration", help="How long it took, in seconds.")],
    status: Annotated[str, Opt("--status", help="completed, failed, cancelled or timed_out.")],
    model: Annotated[str | None, Opt("--model", help="The model that did it.")] = None,
    executor: Annotated[str | None, Opt("--executor", help="Where it ran: claude-code, cursor...")] = None,
    input_tokens: Annotated[int | None, Opt("--input-tokens", help="Tokens in.")] = None,
    output_tokens: Annotated[int | None, Opt("--output-tokens", help="Tokens out.")] = None,
    cost_usd: Annotated[float | None, Opt("--cost-usd", help="What it cost, in US dollars.")] = None,
    prompt_variant: Annotated[str | None, Opt("--prompt-variant", help="The prompt variant used.")] = None,
    skill_version: Annotated[str | None, Opt("--skill-version", help="The skill version used.")] = None,
    task_id: Annotated[
        str | None, Opt("--task-id", help="Your id for the task (default: a new one).")
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the recorded row as JSON.")] = False,
) -> None:
    """Record one task done outside any pipeline (an agent runner reporting its job), finished now.

    Examples:

      orchestrate metrics record --task-type impl --duration 312.5 --status completed --model claude-sonnet

      orchestrate metrics record --task-type spec --duration 40 --status failed --input-tokens 12000 --output-tokens 900 --cost-usd 0.05
    """
    from dataclasses import asdict

    from orchestrate.metrics import service
    from orchestrate.store import open_store

    metric = service.record(
        open_store(settings().store_location),
        task_type=task_type,
        duration=duration,
        status=status,
        task_id=task_id,
        model=model,
        executor=executor,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        prompt_variant=prompt_variant,
        skill_version=skill_version,
    )
    if as_json:
        typer.echo(json.dumps(asdict(metric) | {"status": metric.status.value}, indent=2))
        return
    typer.echo(
        f"recorded task {metric.task_id} ({metric.task_type}, {metric.duration_seconds:g} s, "
        f"{metric.status.value}); see: orchestrate metrics"
    )
