"""``orchestrate pipeline …``: validate, graph, run and resume pipelines.

The registry commands (create, list, show, …) live in ``cli/registry.py`` and the
run-management ones (status, cancel, history, logs) in ``cli/runs.py``; all hang
off this module's ``app``.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.domain.errors import SpecError
from orchestrate.domain.status import ExitCode, RunStatus

if TYPE_CHECKING:
    from orchestrate.domain.records import EventInfo
    from orchestrate.domain.state import RunState
    from orchestrate.engine.scheduler import RunResult

app = typer.Typer(
    help="Validate, inspect, run and manage pipelines.\n\nExample:\n\n  orchestrate pipeline run ci --var environment=prod",
    no_args_is_help=True,
)

MaxParallel = Annotated[
    int | None,
    typer.Option(
        "--max-parallel", "-j", min=1, help="Stages at once (default: pipeline, then config, then 4)."
    ),
]
Plain = Annotated[bool, typer.Option("--plain", help="One line per transition, even on a terminal.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the final run record as JSON (no live view).")]
NoWait = Annotated[
    bool,
    typer.Option(
        "--no-wait", help="At an approval gate, leave it open and exit 3 (resume after the decision)."
    ),
]


@app.command("validate")
@handle_errors
def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Pipeline files (default: every file in pipelines.d/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Check pipeline files against the language; nothing is stored or run.

    Every problem is reported as file:line:col: field: message. Exit 2 if any file is invalid.

    Examples:

      orchestrate pipeline validate pipelines.d/*.yaml

      orchestrate pipeline validate ci.yaml --json
    """
    from orchestrate.services.definitions import definition_files
    from orchestrate.spec.loader import load_pipeline
    from orchestrate.ui.console import print_error_lines, stdout_console

    paths = files or [_relative(p) for p in definition_files(settings().pipelines_dir)]
    results: list[dict[str, object]] = []
    for path in paths:
        try:
            spec = load_pipeline(path, display_path=str(path))
        except SpecError as e:
            results.append({"file": str(path), "valid": False, "errors": [i.__dict__ for i in e.issues]})
            if not as_json:
                print_error_lines(e.lines(), label=False)
            continue
        results.append({"file": str(path), "valid": True, "pipeline": spec.name, "stages": len(spec.stages)})
        if not as_json:
            stdout_console().print(f"✔ {path}: {spec.name}, {len(spec.stages)} stages", markup=False)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    if not paths and not as_json:
        typer.echo("no pipeline files found in pipelines.d/")
    if any(not r["valid"] for r in results):
        raise typer.Exit(int(ExitCode.INVALID_INPUT))


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class GraphFormat(StrEnum):
    text = "text"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


@app.command("graph")
@handle_errors
def graph(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name (pipelines.d/NAME.yaml) or a YAML file.")],
    fmt: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="text, mermaid, dot or json.")
    ] = GraphFormat.text,
) -> None:
    """Show the stage graph: levels as text, or Mermaid / Graphviz DOT / JSON to paste elsewhere.

    Examples:

      orchestrate pipeline graph ci

      orchestrate pipeline graph ci --format mermaid

      orchestrate pipeline graph ci --format dot | dot -Tsvg > ci.svg
    """
    from orchestrate.graph import Dag
    from orchestrate.services.definitions import load_for_reading
    from orchestrate.ui.plan_view import graph_dot, graph_mermaid, graph_text

    spec = load_for_reading(pipeline, settings)
    dag = Dag.from_spec(spec)
    if fmt is GraphFormat.mermaid:
        typer.echo(graph_mermaid(dag))
    elif fmt is GraphFormat.dot:
        typer.echo(graph_dot(dag, spec.name))
    elif fmt is GraphFormat.json:
        nodes = [{"name": n, "needs": list(dag.preds[n])} for n in dag.order]
        typer.echo(json.dumps({"pipeline": spec.name, "stages": nodes, "levels": dag.levels()}, indent=2))
    else:
        typer.echo(graph_text(dag))


@app.command("run")
@handle_errors
def run(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name (pipelines.d/NAME.yaml) or a YAML file.")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show the plan (levels, resolved commands); run and store nothing."),
    ] = False,
    max_parallel: MaxParallel = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="Override a variable: --var NAME=VALUE (repeatable).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; print the run id and return.")
    ] = False,
    version: Annotated[
        int | None, typer.Option("--version", help="Run stored version N instead of the file as it is now.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Run even if disabled; with --resume, start RUN over as a new run."),
    ] = False,
    no_wait: NoWait = False,
    resume_run: Annotated[
        str | None,
        typer.Option("--resume", help="Continue run RUN of this pipeline instead of starting one."),
    ] = None,
    as_json: AsJson = False,
    plain: Plain = False,
    event: Annotated[
        str | None,
        typer.Option("--event", help="With --dry-run: plan as if this event had triggered the run."),
    ] = None,
    payload: Annotated[
        str | None, typer.Option("--payload", help="With --event: its JSON payload (file or -).")
    ] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="With --event: the event's branch.")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="With --event: a label (repeatable).")
    ] = None,
    changed_file: Annotated[
        list[str] | None, typer.Option("--changed-file", help="With --event: a changed file (repeatable).")
    ] = None,
    parent_run: Annotated[str | None, typer.Option("--parent-run", hidden=True)] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option("--variant", help="Force an experiment's variant: --variant NAME=VALUE (repeatable)."),
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Queue the run for `orchestrate worker`; print its id and return.")
    ] = False,
) -> None:
    """Run a pipeline: stages start as soon as their dependencies finish, shown live.

    Exit codes: 0 succeeded, 1 failed or cancelled, 2 invalid input, 130 interrupted (Ctrl-C).

    Examples:

      orchestrate pipeline run ci

      orchestrate pipeline run ci --dry-run

      orchestrate pipeline run docs --dry-run --event push --branch main --changed-file docs/a.md

      orchestrate pipeline run cd --max-parallel 8 --var environment=prod

      orchestrate pipeline run ci --detach      # then: orchestrate pipeline status RUN --watch

      orchestrate pipeline run ci --queue       # the worker starts it (as concurrency: allows)

      orchestrate pipeline run ci --version 3   # a stored version, e.g. after a bad edit

      orchestrate pipeline run review --variant prompt-style=terse   # force an experiment's variant

      orchestrate pipeline run ci --resume 01jd3k   # same as: orchestrate pipeline resume 01jd3k
    """
    from orchestrate.services import runs

    overrides = runs.parse_vars(var or [])
    s = settings()
    if resume_run is not None:
        _resume(
            resume_run,
            None,
            None,
            force,
            False,
            max_parallel,
            as_json,
            plain,
            no_wait,
            pipeline=Path(pipeline).stem,
        )
        return
    simulated = None
    if event is not None or payload or branch or label or changed_file:
        from orchestrate.domain.errors import UsageError
        from orchestrate.triggers import events as triggers

        if not dry_run or event is None:
            raise UsageError(
                "--event (with --payload, --branch, --label, --changed-file) goes with --dry-run",
                hint="to start runs from an event: orchestrate event emit NAME ...",
            )
        body = triggers.read_payload(payload)
        simulated = triggers.build_event(
            event,
            body,
            branch=branch,
            labels=label or [],
            changed_files=changed_file or [],
            user=s.user,
            dry_run=True,
        )
    if dry_run:
        _dry_run(pipeline, overrides, max_parallel, as_json, simulated)
        return
    if queue and detach:
        from orchestrate.domain.errors import UsageError

        raise UsageError(
            "--queue and --detach: a queued run is started by `orchestrate worker`, in the background",
            hint="use one: --queue (the worker starts it) or --detach (start it now, in the background)",
        )
    store, state, spec = runs.prepare(
        s,
        pipeline,
        overrides,
        version=version,
        force=force,
        parent=parent_run,
        env=os.environ,
        variants=variant or (),
    )
    if parent_run is None:  # a child run is part of its parent's slot (issue 11: concurrency)
        from orchestrate.cli.worker import admit_or_queue

        if not admit_or_queue(s, store, state, spec, queue, as_json):
            return
    if detach:
        pid = runs.detach(s, state.run_id, max_parallel)
        if as_json:
            typer.echo(json.dumps({"id": state.run_id, "pid": pid, "status": "pending"}))
        else:
            typer.echo(state.run_id)
            typer.echo(
                f"running in the background (pid {pid}); watch: orchestrate pipeline status {state.run_id} --watch",
                err=True,
            )
        return
    result = _execute(
        s, store, state, as_json, plain, max_parallel=max_parallel, spec=spec, wait_for_approvals=not no_wait
    )
    if parent_run is not None and os.environ.get("ORCHESTRATE_OUTPUT"):
        runs.report_to_parent(store.run_record(state.run_id), os.environ["ORCHESTRATE_OUTPUT"])
    finish(result, store.run_record(state.run_id) if as_json else None)


@app.command("resume")
@handle_errors
def resume(
    run_id: Annotated[str | None, typer.Argument(help="Run id (a unique prefix is enough).")] = None,
    from_stage: Annotated[
        str | None,
        typer.Option("--from", help="Re-run this stage and everything after it, even if it succeeded."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Re-create the run from its checkpoint.json (e.g. moved from another machine).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Start over: a new run of RUN's definition, linked to it.")
    ] = False,
    use_current: Annotated[
        bool,
        typer.Option(
            "--use-current-definition", help="Continue with the file as it is now, not the run's snapshot."
        ),
    ] = False,
    max_parallel: MaxParallel = None,
    no_wait: NoWait = False,
    as_json: AsJson = False,
    plain: Plain = False,
) -> None:
    """Continue a run that stopped: succeeded and skipped stages are kept, the rest run again.

    A stage that was running when its process died runs again as a new attempt; failed
    stages of a failed run are re-run with everything downstream of them. The run's own
    definition is used, not the current file, unless --use-current-definition.

    Examples:

      orchestrate pipeline resume 01jd3k

      orchestrate pipeline resume 01jd3k --from build

      orchestrate pipeline resume --checkpoint /mnt/old/checkpoints/01jd3k.../checkpoint.json

      orchestrate pipeline resume 01jd3k --force      # everything again, as a new run
    """
    from orchestrate.domain.errors import UsageError

    if (run_id is None) == (checkpoint is None):
        raise UsageError(
            "give a RUN id or --checkpoint FILE (one of them)", hint="orchestrate pipeline resume 01jd3k"
        )
    _resume(run_id, from_stage, checkpoint, force, use_current, max_parallel, as_json, plain, no_wait)


def _resume(
    run_id: str | None,
    from_stage: str | None,
    checkpoint: Path | None,
    force: bool,
    use_current: bool,
    max_parallel: int | None,
    as_json: bool,
    plain: bool,
    no_wait: bool = False,
    pipeline: str | None = None,
) -> None:
    from orchestrate.domain.errors import UsageError
    from orchestrate.services import resume as resuming

    s = settings()
    if checkpoint is not None:
        store, state, spec = resuming.import_checkpoint(s, checkpoint)
        rerun = resuming.prepare(s, state.run_id, from_stage)[2]
    elif force:
        store, state, spec = resuming.new_run_from(s, run_id or "", from_stage=None, overrides={})
        rerun = frozenset()
    else:
        store, state, rerun, spec = resuming.prepare(s, run_id or "", from_stage, use_current)
    if pipeline is not None and state.pipeline != pipeline:
        raise UsageError(f"run {state.run_id} is a run of {state.pipeline}, not {pipeline}")
    if state.status is RunStatus.SUCCEEDED:
        typer.echo(f"run {state.run_id} already succeeded; nothing to resume")
        return
    result = _execute(
        s,
        store,
        state,
        as_json,
        plain,
        max_parallel=max_parallel,
        spec=spec,
        reopen=True,
        rerun=rerun,
        wait_for_approvals=not no_wait,
    )
    finish(result, store.run_record(state.run_id) if as_json else None)


@app.command("rollback")
@handle_errors
def rollback(
    run_id: Annotated[str, typer.Argument(help="A finished run (a unique prefix is enough).")],
    to: Annotated[
        str | None, typer.Option("--to", help="Undo this stage and every later one (default: all).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: AsJson = False,
    plain: Plain = False,
) -> None:
    """Undo a finished run by hand: the rollback actions of its succeeded stages, newest first.

    Refused on an active run or one already rolled back. Everything is recorded in the run.

    Examples:

      orchestrate pipeline rollback 01jd3k --to deploy-staging --yes

      orchestrate pipeline rollback 01jd3k
    """
    from orchestrate.domain.errors import UsageError
    from orchestrate.services import execution
    from orchestrate.store import open_store

    s = settings()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to roll back {run_id} without confirmation", hint="pass --yes")
        if not typer.confirm(f"run the rollback actions of run {run_id}?", default=False):
            raise typer.Exit(int(ExitCode.INVALID_INPUT))
    store = open_store(s.store_location)
    views: list[Any] = []

    def view_for(state: RunState) -> Any:  # the view needs the run, which the service finds
        views.append(make_view(state, as_json, plain))
        return views[-1].__enter__()

    try:
        result = execution.rollback(s, store, run_id, to, s.user, view_for, os.environ)
    finally:
        for view in views:
            view.__exit__(None, None, None)
    record = store.run_record(store.resolve_run_id(run_id)) if as_json else None
    if record is not None:
        typer.echo(json.dumps(record, indent=2))
    if not result.reason or not result.reason.startswith("rolled back"):
        raise typer.Exit(int(ExitCode.RUN_FAILED))


@app.command("fork")
@handle_errors
def fork(
    run_id: Annotated[str, typer.Argument(help="The run to fork (a unique prefix is enough).")],
    from_stage: Annotated[str, typer.Option("--from", help="Run this stage and everything after it again.")],
    var: Annotated[
        list[str] | None, typer.Option("--var", help="Override a variable: --var NAME=VALUE (repeatable).")
    ] = None,
    max_parallel: MaxParallel = None,
    as_json: AsJson = False,
    plain: Plain = False,
) -> None:
    """A new run that reuses RUN's results upstream of STAGE and runs STAGE and what follows.

    The new run is linked to RUN; compare them with `pipeline diff`.

    Examples:

      orchestrate pipeline fork 01jd3k --from deploy

      orchestrate pipeline fork 01jd3k --from summarize --var model=opus
    """
    from orchestrate.services import resume as resuming
    from orchestrate.services import runs

    s = settings()
    store, state, spec = resuming.new_run_from(
        s, run_id, from_stage=from_stage, overrides=runs.parse_vars(var or [])
    )
    if not as_json:
        typer.echo(f"run {state.run_id}: fork of {run_id} from {from_stage}", err=True)
    result = _execute(s, store, state, as_json, plain, max_parallel=max_parallel, spec=spec)
    finish(result, store.run_record(state.run_id) if as_json else None)


@app.command("diff")
@handle_errors
def diff(
    run_a: Annotated[str, typer.Argument(help="A run id (or unique prefix).")],
    run_b: Annotated[str, typer.Argument(help="Another run id (or unique prefix).")],
    all_stages: Annotated[
        bool, typer.Option("--all", help="Show every stage, not only those that differ.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Two runs side by side, per stage: status, duration, outputs, tokens and cost that differ.

    Examples:

      orchestrate pipeline diff 01jd3k 01jd4m

      orchestrate pipeline diff 01jd3k 01jd4m --all --json
    """
    from orchestrate.services.diff import diff_runs
    from orchestrate.store import open_store

    store = open_store(settings().store_location)
    result = diff_runs(
        store.run_record(store.resolve_run_id(run_a)), store.run_record(store.resolve_run_id(run_b))
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(all_stages), indent=2))
        return
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.diff_view import diff_view

    stdout_console().print(diff_view(result, all_stages))


def _execute(s: Any, store: Any, state: RunState, as_json: bool, plain: bool, **options: Any) -> RunResult:
    """Run (or continue) the stored run in this process behind the view this terminal wants."""
    from orchestrate.services import execution

    with make_view(state, as_json, plain) as view:
        return execution.execute(s, store, state, view, env=os.environ, **options)


def finish(result: RunResult, record: dict[str, Any] | None) -> None:
    if record is not None:
        typer.echo(json.dumps(record, indent=2))
    if result.status is RunStatus.SUCCEEDED:
        return
    if result.status is RunStatus.WAITING_APPROVAL:
        raise typer.Exit(int(ExitCode.WAITING_APPROVAL))
    if result.status is RunStatus.CANCELLED and (result.reason or "").startswith("cancelled by SIG"):
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    raise typer.Exit(int(ExitCode.RUN_FAILED))


def make_view(initial: RunState, as_json: bool, plain: bool) -> Any:
    """The reporter for this terminal: live table, plain lines, or silence for --json."""
    from orchestrate.ui.plain import PlainReporter, StateTracker, is_terminal

    if as_json:
        return StateTracker(initial)
    if plain or not is_terminal():
        return PlainReporter(sys.stdout, initial)
    from orchestrate.ui.console import stdout_console
    from orchestrate.ui.reporters import LiveReporter

    return LiveReporter(stdout_console(), initial)


def _dry_run(
    ref: str, overrides: dict[str, str], max_parallel: int | None, as_json: bool, event: EventInfo | None
) -> None:
    from orchestrate.domain.errors import FeatureNotAvailable
    from orchestrate.services.definitions import check_runnable, load_for_reading
    from orchestrate.services.plan import make_plan
    from orchestrate.services.runs import merge_variables
    from orchestrate.settings import max_parallel_for
    from orchestrate.ui.console import print_error_lines, stdout_console
    from orchestrate.ui.plan_view import plan_view

    s = settings()
    spec = load_for_reading(ref, settings)
    variables = merge_variables(spec, overrides)
    timeout = spec.default_timeout or s.default_timeout
    if event is not None:
        from orchestrate.triggers.events import match_pipeline

        match = match_pipeline(spec, True, event)
        variables = {**variables, **match.variables}
        if match.trigger is None:
            print_error_lines(
                [f"note: event {event.name} would not start {spec.name}: {match.reason}"], label=False
            )
    plan = make_plan(spec, variables, max_parallel_for(max_parallel, s, spec.max_parallel), timeout, event)
    if as_json:
        typer.echo(json.dumps(plan.to_dict(), indent=2))
    else:
        stdout_console().print(plan_view(plan))
    try:
        check_runnable(spec)
    except FeatureNotAvailable as e:  # the plan is still worth seeing; say what a real run would refuse
        print_error_lines([f"note: {e.message}"], label=False)
