"""`orchestrate metrics` over a million task-metric rows: time in queries and whole-process time.

    .venv/bin/python bench/metrics.py                    # 1,000,000 rows; about 2 minutes, most of it generating
    .venv/bin/python bench/metrics.py --rows 100000      # a smaller store
    .venv/bin/python bench/metrics.py --json             # figures and every sample as JSON on stdout
    .venv/bin/python bench/metrics.py --keep /tmp/b      # keep the workspace; --reuse /tmp/b/... measures it again

A temporary workspace gets N rows through ``Store.record_metrics`` in batches (one
transaction each), shaped like real work: six pipelines of agent and shell stages
(each stage with its task type, executor and, for agents, a model with tokens and
cost), a few prompt variants, 5% of rows reported by agent runners outside any
pipeline, ~88% completed, 6% failed, 3% timed out, 3% cancelled, spread over the
last 60 days in time order. Then:

- query: ``metrics.service.summarize`` in this process (nothing but its SQL and a
  fold of a few hundred groups), median of 5 after a warm-up, for each variant;
- process: ``orchestrate --workspace WS metrics ...`` as a user runs it (stdout to
  /dev/null, a private .pyc cache as bench/run.py), median of 3 after a warm-up.

Targets from issue 8, acceptance 6: `metrics --json` under 0.5 s in its queries,
`--by model` under 1 s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import child_env

from orchestrate.domain.metrics import MetricStatus, TaskMetric, attempt_task_id
from orchestrate.metrics import service
from orchestrate.store import Store, open_store

TARGET_QUERY_S = {"metrics --json": 0.5, "metrics --by model --json": 1.0}
BATCH = 50_000
DAYS = 60

# pipeline: [(stage, task_type, executor, model, mean seconds)]; a None model is a shell stage.
_PIPELINES: dict[str, list[tuple[str | None, str, str, str | None, float]]] = {
    "ci": [("lint", "check", "subprocess", None, 20), ("test", "test", "subprocess", None, 240)]
    + [(f"shard-{i}", "test", "subprocess", None, 180) for i in range(6)]
    + [("build", "build", "subprocess", None, 90), ("review", "review", "claude-code", "claude-sonnet", 120)],
    "agents": [
        ("spec", "spec", "claude-code", "claude-opus", 300),
        ("impl", "impl", "claude-code", "claude-sonnet", 900),
        ("review", "review", "cursor", "cursor/auto", 200),
        ("fix", "impl", "cursor", "cursor/composer-1", 600),
        ("test", "test", "subprocess", None, 240),
    ],
    "triage": [
        ("label", "triage", "python", "gpt-5-mini", 15),
        ("route", "triage", "python", "gpt-5-mini", 10),
    ],
    "docs": [
        ("write", "docs", "claude-code", "claude-sonnet", 240),
        ("publish", "deploy", "subprocess", None, 30),
    ],
    "release": [
        ("notes", "docs", "claude-code", "claude-opus", 180),
        ("tag", "release", "subprocess", None, 5),
        ("publish", "deploy", "subprocess", None, 120),
    ],
    "nightly": [
        ("audit", "review", "claude-code", "claude-opus", 1200),
        ("bench", "test", "subprocess", None, 600),
    ],
}
WEIGHTS = {"ci": 40, "agents": 25, "triage": 15, "docs": 8, "release": 4, "nightly": 3}
PRICE = {  # $ per million tokens in, out
    "claude-opus": (15.0, 75.0),
    "claude-sonnet": (3.0, 15.0),
    "cursor/auto": (1.0, 4.0),
    "cursor/composer-1": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
}
VARIANTS = ("a", "b", "c")
STATUSES = [MetricStatus.COMPLETED] * 88 + [MetricStatus.FAILED] * 6
STATUSES += [MetricStatus.TIMED_OUT] * 3 + [MetricStatus.CANCELLED] * 3


def generate(n: int, seed: int, now: float) -> Iterator[TaskMetric]:
    """N rows in time order over the last DAYS days, a run's stages one after another."""
    rng = random.Random(seed)
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    step = DAYS * 86400 / n
    at = now - DAYS * 86400
    i = run = 0
    while i < n:
        if rng.random() < 0.05:  # an agent runner's own job, outside any pipeline
            job = (None, rng.choice(("spec", "impl", "review")), "agent-runner", rng.choice(list(PRICE)), 300)
            yield _metric(rng, at, job, None, f"job-{i}", 1)
            i, at = i + 1, at + step
            continue
        pipeline = rng.choices(names, weights)[0]
        run, run_id = run + 1, f"run{run:08d}"
        for stage in _PIPELINES[pipeline][: n - i]:
            yield _metric(rng, at, stage, pipeline, run_id, 2 if rng.random() < 0.03 else 1)
            i, at = i + 1, at + step


def _metric(
    rng: random.Random,
    at: float,
    stage: tuple[str | None, str, str, str | None, float],
    pipeline: str | None,
    task: str,
    attempt: int,
) -> TaskMetric:
    name, task_type, executor, model, mean = stage
    status = rng.choice(STATUSES)
    duration = mean * 5 if status is MetricStatus.TIMED_OUT else rng.lognormvariate(0, 0.8) * mean
    tokens_in = tokens_out = cost = None
    if model is not None:
        tokens_in, tokens_out = int(duration * rng.uniform(50, 400)), int(duration * rng.uniform(5, 40))
        cost = (tokens_in * PRICE[model][0] + tokens_out * PRICE[model][1]) / 1e6
    return TaskMetric(
        task_id=task if name is None else attempt_task_id(task, name, attempt),
        task_type=task_type,
        duration_seconds=round(duration, 3),
        status=status,
        created_at=at,
        model=model,
        executor=executor,
        prompt_variant=rng.choice(VARIANTS) if model else None,
        skill_version="v3" if model else None,
        pipeline=pipeline,
        run_id=None if name is None else task,
        stage=name,
        attempt=None if name is None else attempt,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=cost,
    )


def populate(db: Path, rows: int, seed: int) -> float:
    started = time.perf_counter()
    rng_rows = generate(rows, seed, time.time())
    with open_store(db) as store:
        # Bench only: a 1 GiB page cache for the load. Every row goes into nine indexes at
        # random places; with SQLite's default 2 MiB cache that churns pages through the OS
        # (about 80 s for a million rows here, against 50 s).
        store._db.conn.execute("PRAGMA cache_size = -1048576")
        done = 0
        while done < rows:
            batch = [next(rng_rows) for _ in range(min(BATCH, rows - done))]
            done += store.record_metrics(batch)
            log(f"generate: {done:,}/{rows:,} rows, {time.perf_counter() - started:.1f} s")
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- measuring


# What is measured: `orchestrate --workspace WS COMMAND` and the summarize() call it makes.
COMMANDS = (
    "metrics --json",
    "metrics --by model --json",
    "metrics --by model",
    "metrics --by stage --json",
    "metrics --since 7d --json",
)


def option(command: str, name: str) -> str | None:
    words = command.split()
    return words[words.index(name) + 1] if name in words else None


def time_queries(store: Store, command: str, reps: int) -> tuple[list[float], int]:
    """Seconds per summarize call (after a warm-up), and the statements one call runs."""
    statements: list[str] = []

    def call() -> None:
        since = option(command, "--since")
        service.summarize(
            store, None if since is None else service.parse_since(since), None, None, option(command, "--by")
        )

    store._db.conn.set_trace_callback(statements.append)  # bench only: count what one call runs
    call()
    store._db.conn.set_trace_callback(None)
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples, sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))


def orchestrate_argv() -> list[str]:
    script = Path(sys.executable).parent / "orchestrate"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrate"]


def time_process(argv: Sequence[str], env: dict[str, str], reps: int) -> list[float]:
    def once() -> float:
        start = time.perf_counter()
        done = subprocess.run(
            list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(
                f"bench: {' '.join(argv)} exited {done.returncode}\n{done.stderr.decode()[-2000:]}"
            )
        return wall

    once()  # warm-up: the .pyc cache and the OS page cache
    return [once() for _ in range(reps)]


# ---------------------------------------------------------------------------- report


def table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    rows = [tuple(header), *(tuple(r) for r in body)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def report(data: dict[str, Any]) -> str:
    info = data["info"]
    lines = [
        f"orchestrate ({info['commit']}) on Python {info['python']}, SQLite {info['sqlite']}, "
        f"{info['platform']}, nproc {info['nproc']}; load average before: {info['load']}",
        f"store: {data['rows']:,} task metrics over {DAYS} days, {data['db_mib']:,.0f} MiB "
        f"(generated in {data['generation_s']:.1f} s through Store.record_metrics, {BATCH:,} a transaction)",
        f"query: summarize() in-process, median of {data['query_reps']} after a warm-up; "
        f"process: `orchestrate --workspace WS ...`, median of {data['reps']} after a warm-up ({data['process']})",
        "",
    ]
    body = []
    for r in data["results"]:
        target = TARGET_QUERY_S.get(r["command"])
        verdict = "" if target is None else ("ok" if r["query_s"] < target else "OVER")
        body.append(
            (
                r["command"],
                f"{r['query_s'] * 1000:,.0f}",
                f"{min(r['query_samples']) * 1000:,.0f}",
                "-" if target is None else f"< {target * 1000:,.0f}",
                verdict,
                str(r["statements"]),
                "-" if r["process_s"] is None else f"{r['process_s'] * 1000:,.0f}",
            )
        )
    lines.append(table(("command", "query ms", "min", "target", "", "SELECTs", "process ms"), body))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "commit": commit or "unknown",
        "load": load,
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="task metrics in the store (1,000,000)")
    parser.add_argument("--reps", type=int, default=3, help="processes per command (3)")
    parser.add_argument(
        "--query-reps", type=int, default=5, help="in-process summarize calls per variant (5)"
    )
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print figures and samples as JSON")
    parser.add_argument("--keep", metavar="DIR", type=Path, help="build the workspace in DIR and keep it")
    parser.add_argument(
        "--reuse", metavar="WS", type=Path, help="measure this kept workspace; generate nothing"
    )
    parser.add_argument("--caller-bytecode", action="store_true", help="keep the caller's bytecode settings")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.reps < 1 or args.query_reps < 1:
        parser.error("--rows, --reps and --query-reps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    parent = Path(tempfile.mkdtemp(prefix="orchestrate-bench-metrics-", dir=args.keep))
    try:
        if args.reuse:
            workspace, generation_s = args.reuse.resolve(), 0.0
        else:
            workspace = parent / "ws"
            (workspace / "pipelines.d").mkdir(parents=True)
            (workspace / "orchestrate.yaml").write_text("{}\n", encoding="utf-8")
            log(f"generate: {args.rows:,} rows in {workspace}")
            generation_s = populate(workspace / "orchestrate.db", args.rows, args.seed)
        db = workspace / "orchestrate.db"
        with open_store(db) as store:
            rows = service.summarize(store, None, None, None, None)["execution_time"]["count"]
            measured = {c: time_queries(store, c, args.query_reps) for c in COMMANDS}
        log("query: done")
        from orchestrate.cli.app import app

        registered = any(group.name == "metrics" for group in app.registered_groups)
        env = child_env(None if args.caller_bytecode else parent / "pycache")
        if registered:
            base = [*orchestrate_argv(), "--workspace", str(workspace)]
            process = "orchestrate --workspace WS"
        else:  # not wired into cli/app.py yet: the sub-app alone, as `orchestrate metrics` will run it
            code = "from orchestrate.cli.metrics import app; app(prog_name='orchestrate metrics')"
            base = [sys.executable, "-c", code]
            env["ORCHESTRATE_HOME"] = str(workspace)
            process = "the metrics sub-app alone: `orchestrate metrics` is not registered in cli/app.py yet"
        results = []
        for command in COMMANDS:
            samples, statements = measured[command]
            args_ = command.split() if registered else command.split()[1:]
            proc = time_process([*base, *args_], env, args.reps)
            log(f"process: {command} done")
            results.append(
                {
                    "command": command,
                    "query_s": statistics.median(samples),
                    "query_samples": samples,
                    "statements": statements,
                    "process_s": statistics.median(proc),
                    "process_samples": proc,
                }
            )
        db_mib = sum(p.stat().st_size for p in workspace.glob("orchestrate.db*")) / 2**20
    finally:
        if args.keep and not args.reuse:
            log(f"bench: workspace kept in {parent / 'ws'}")
        else:
            shutil.rmtree(parent, ignore_errors=True)
    data = {
        "info": info,
        "rows": rows,
        "db_mib": db_mib,
        "generation_s": generation_s,
        "query_reps": args.query_reps,
        "reps": args.reps,
        "process": process,
        "results": results,
    }
    print(json.dumps(data, indent=2) if args.json else report(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
