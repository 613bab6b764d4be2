"""Throughput of queued runs with 1, 2 and 3 `orchestrate worker` processes on PostgreSQL (issue 13, point 5).

    .venv/bin/python bench/workers.py                        # 1,000 runs; 1, 2, 3 workers; max 4 runs each
    .venv/bin/python bench/workers.py --runs 200 --workers 1,3
    .venv/bin/python bench/workers.py --url postgresql+psycopg://postgres@127.0.0.1:5432   # an existing server
    .venv/bin/python bench/workers.py --json                 # figures as JSON on stdout

Without --url (or ORCHESTRATE_TEST_POSTGRES), a private PostgreSQL server is started on
loopback with .ci/postgres for the measurement and stopped afterwards. For each worker
count: a fresh database and workspace, `--runs` queued runs of a one-stage pipeline
(`true`: a short run, so the figure is the cost of claiming, starting and recording a
run), then that many `orchestrate worker` processes started at once, each with
`--max-runs`, all sharing the queue through `SELECT ... FOR UPDATE SKIP LOCKED` claims.
Measured: from the first run's start to the last run's end as the store records them
(runs/s), and the wall time from launching the workers until every run had ended.
Every run must succeed, once; the script says so if one did not. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, child_env, machine_info  # bench/ is not a package

ORCHESTRATE = [sys.executable, "-m", "orchestrate"]
PIPELINE = "name: short\nstages:\n  - {name: a, run: 'true'}\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def admin(server: str) -> str:
    return server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"


def fresh_database(server: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin(server), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin(server), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def queue_runs(ws: Path, env: dict[str, str], url: str, n: int) -> None:
    """The first run as a user queues one (`pipeline run --queue`), the others like it, in this process."""
    first = subprocess.run(
        [*ORCHESTRATE, "--workspace", str(ws), "pipeline", "run", "short", "--queue"],
        env={**env, "ORCHESTRATE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    if first.returncode != 0:
        raise SystemExit(f"queueing the first run failed: {first.stderr.strip()}")
    from orchestrate.domain.ids import new_run_id
    from orchestrate.services import concurrency
    from orchestrate.store import open_store

    store = open_store(url)
    try:
        state = store.run_state(first.stdout.strip())
        version = store.version(state.pipeline, state.version)
        assert version is not None
        for i in range(n - 1):
            run_id = new_run_id()
            created = state.created_at + 0.000_001 * (i + 1)
            store.create_run(
                run_id,
                state.pipeline,
                state.version,
                version.digest,
                {},
                list(state.stages),
                created,
                "manual",
            )
            concurrency.queue(store, run_id)  # as `pipeline run --queue` does after creating it
    finally:
        store.close()


def counts(url: str) -> tuple[Counter[str], float | None, float | None, int]:
    """(runs by status, first start, last end, runs launched more than once)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        statuses = Counter(
            {str(s): int(n) for s, n in conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY 1")}
        )
        first, last = conn.execute("SELECT MIN(started_at), MAX(finished_at) FROM runs").fetchone() or (
            None,
            None,
        )
        twice = conn.execute(
            "SELECT COUNT(*) FROM (SELECT run_id FROM worker_launches GROUP BY run_id HAVING COUNT(*) > 1) x"
        ).fetchone()
    return statuses, first, last, int(twice[0]) if twice else 0


def measure(
    server: str, workers: int, runs: int, max_runs: int, poll: str, keep: Path | None
) -> dict[str, Any]:
    ws = Path(tempfile.mkdtemp(prefix=f"bench-workers-{workers}-", dir=keep))
    (ws / "pipelines.d").mkdir()
    (ws / "pipelines.d" / "short.yaml").write_text(PIPELINE)
    (ws / "orchestrate.yaml").write_text(f"worker: {{active_poll: {poll}, idle_poll: 5s, wake: false}}\n")
    name = fresh_database(server)
    url = f"{server}/{name}"
    env = child_env(ws / ".pycache")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        log(f"{workers} worker(s): queueing {runs} runs")
        queue_runs(ws, env, url, runs)
        log(f"{workers} worker(s): started")
        started = time.time()
        for i in range(workers):
            procs.append(
                subprocess.Popen(
                    [
                        *ORCHESTRATE,
                        "--workspace",
                        str(ws),
                        "worker",
                        "--port",
                        "0",
                        "--max-runs",
                        str(max_runs),
                    ],
                    env={**env, "ORCHESTRATE_DATABASE_URL": url},
                    stdout=open(ws / f"worker-{i}.log", "wb"),  # noqa: SIM115 - lives as long as the process
                    stderr=subprocess.STDOUT,
                    cwd=ws,
                )
            )
        deadline = started + max(600.0, runs * 2.0)
        while True:
            statuses, first, last, twice = counts(url)
            done = sum(n for s, n in statuses.items() if s in ("succeeded", "failed", "cancelled"))
            if done >= runs or time.time() > deadline:
                break
            time.sleep(0.5)
        wall = time.time() - started
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_database(server, name)
        if keep is None:
            shutil.rmtree(ws, ignore_errors=True)
    span = (last - first) if first is not None and last is not None else None
    return {
        "workers": workers,
        "runs": runs,
        "succeeded": statuses.get("succeeded", 0),
        "statuses": dict(statuses),
        "launched_twice": twice,
        "span_seconds": None if span is None else round(span, 3),
        "runs_per_second": None if not span else round(statuses.get("succeeded", 0) / span, 2),
        "wall_seconds": round(wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,3", help="worker counts to measure, comma-separated")
    parser.add_argument("--max-runs", type=int, default=4, help="runs alive at once per worker (default 4)")
    parser.add_argument("--poll", default="100ms", help="worker.active_poll (default 100ms)")
    parser.add_argument("--url", default=os.environ.get("ORCHESTRATE_TEST_POSTGRES", ""), help="a server URL")
    parser.add_argument("--keep", type=Path, help="keep the workspaces under this folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts_wanted = [int(w) for w in args.workers.split(",") if w.strip()]

    folder = None
    server = args.url.rstrip("/")
    if not server:
        folder = tempfile.mkdtemp(prefix="bench-pg-")
        script = ROOT / ".ci" / "postgres"
        server = subprocess.run(
            [str(script), "start", folder, str(free_port())], check=True, capture_output=True, text=True
        ).stdout.strip()
    results = []
    try:
        for n in counts_wanted:
            results.append(measure(server, n, args.runs, args.max_runs, args.poll, args.keep))
    finally:
        if folder is not None:
            subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", folder], check=False, capture_output=True)
            shutil.rmtree(folder, ignore_errors=True)

    machine = machine_info()
    if args.json:
        print(
            json.dumps({"machine": machine, "max_runs": args.max_runs, "poll": args.poll, "results": results})
        )
        return
    print(
        f"{args.runs} queued runs of one `true` stage on PostgreSQL; --max-runs {args.max_runs} per worker, "
        f"active_poll {args.poll}; {machine['nproc']} CPUs ({machine['processor']})"
    )
    print(f"{'workers':>7}  {'runs/s':>7}  {'span s':>7}  {'wall s':>7}  outcome")
    for r in results:
        ok = r["succeeded"] == r["runs"] and r["launched_twice"] == 0
        outcome = (
            "all succeeded, each launched once"
            if ok
            else f"{r['statuses']}, {r['launched_twice']} relaunched"
        )
        print(
            f"{r['workers']:>7}  {r['runs_per_second']!s:>7}  {r['span_seconds']!s:>7}  {r['wall_seconds']:>7}  {outcome}"
        )


if __name__ == "__main__":
    main()
