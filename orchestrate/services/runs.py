"""Starting a run: definition → a stored pending run (then services.execution runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrate.domain.errors import NotFoundError, UsageError
from orchestrate.domain.ids import new_run_id
from orchestrate.domain.state import RunState
from orchestrate.services import agents, approvals, dask_cluster, secrets
from orchestrate.services.definitions import (
    check_runnable,
    check_uses,
    display_path,
    find_definition,
    load_cached,
    looks_like_path,
)
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.store import Store


def parse_vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE", hint="e.g. --var environment=prod")
        out[key.strip()] = value
    return out


def merge_variables(spec: PipelineSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    unknown = [k for k in overrides if k not in spec.variables]
    if unknown:
        declared = ", ".join(spec.variables) or "none"
        raise UsageError(
            f"--var {unknown[0]}: pipeline {spec.name} has no variable {unknown[0]!r} (declared: {declared})",
            hint=f"declare it under variables: in {spec.path}",
        )
    return {**spec.variables, **overrides}


def prepare(
    settings: Settings,
    ref: str,
    overrides: Mapping[str, str],
    *,
    version: int | None = None,
    force: bool = False,
    parent: str | None = None,
    env: Mapping[str, str] | None = None,
    variants: Sequence[str] = (),
) -> tuple[Store, RunState, PipelineSpec]:
    """Validate, register the definition and store a new pending run (a child run with ``parent``).

    ``variants`` are ``--variant NAME=VALUE`` choices; the run's other experiments get theirs here too.
    """
    from orchestrate.services import experiments
    from orchestrate.store import open_store

    store = open_store(settings.store_location)
    spec, number = resolve_spec(settings, store, ref, version)
    info = store.pipeline(spec.name)
    if info is not None and not info.enabled and not force:
        raise UsageError(
            f"pipeline {spec.name} is disabled",
            hint=f"enable it with: orchestrate pipeline enable {spec.name} (or run it once with --force)",
        )
    check_runnable(spec)
    check_uses(settings, spec)
    agents.check_pipeline(settings, spec)
    dask_cluster.check_pipeline(settings, spec)  # executor: dask with no scheduler: refused before the run
    approvals.check_config(settings, spec)
    if env is not None:
        secrets.resolve(settings, spec, env)  # a missing secret is refused before the run exists
    variables = merge_variables(spec, overrides)
    forced = experiments.check_forced(spec, variants)
    run_id = new_run_id()
    now = time.time()
    store.create_run(
        run_id,
        spec.name,
        number,
        spec.digest,
        variables,
        spec.stage_names,
        now,
        trigger="manual" if parent is None else f"child of run {parent}",
        started_by=settings.user,
        parent_run_id=parent,
    )
    experiments.assign_run(store, spec, run_id, forced)
    return store, store.run_state(run_id), spec


def report_to_parent(record: Mapping[str, Any], output_path: str) -> None:
    """A child run's result, as the outputs of the parent's ``uses:`` stage: its stages' outputs + run_id."""
    outputs: dict[str, str] = {}
    for stage in record["stages"]:
        outputs.update(stage["outputs"])
    outputs.update({"run_id": record["id"], "status": record["status"]})
    with open(output_path, "w", encoding="utf-8") as f:
        json.dump(outputs, f)


def resolve_spec(settings: Settings, store: Store, ref: str, version: int | None) -> tuple[PipelineSpec, int]:
    """The definition to run: the file as it is now, or a stored version (``--version N``)."""
    if version is None:
        path = find_definition(settings, ref)
        return load_cached(path, display_path(path, settings.root), store)
    name = Path(ref).stem if looks_like_path(ref) else ref
    info = store.version(name, version)
    if info is None:
        known = ", ".join(str(v.version) for v in store.versions(name)) or "none"
        raise NotFoundError(
            f"pipeline {name} has no version {version} (registered: {known})",
            hint=f"orchestrate pipeline show {name} --version N shows one",
        )
    return PipelineSpec.from_dict(json.loads(info.compiled)), info.version


def orchestrate_argv(settings: Settings, *args: str) -> list[str]:
    """This program, in another process, on this workspace."""
    return [sys.executable, "-m", "orchestrate", "--workspace", str(settings.root), *args]


def detach(settings: Settings, run_id: str, max_parallel: int | None) -> int:
    """Start the stored run in a background process that outlives this terminal; returns its pid."""
    log = settings.logs_dir / run_id / "run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = orchestrate_argv(settings, "pipeline", "resume", run_id)
    argv += ["--plain"] + (["--max-parallel", str(max_parallel)] if max_parallel else [])
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no SIGHUP when the terminal closes, no Ctrl-C from it
            cwd=settings.root,
        )
    return proc.pid
