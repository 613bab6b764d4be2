"""A 1,000-stage run on the Dask executor against the same run on the local one (issue 13, point 5).

(Not bench/dask.py: a script's folder comes first on sys.path, so that name would shadow dask.)

    .venv/bin/python bench/dask_executor.py                    # 1,000 `true` stages, -j 8, 2 workers x 4 threads
    .venv/bin/python bench/dask_executor.py --stages 200 -j 4  # smaller
    .venv/bin/python bench/dask_executor.py --json             # figures and samples as JSON on stdout

A `dask scheduler` and `--workers` `dask worker` processes are started on loopback
for the measurement (same machine: the figures are the executor's own overhead,
not a network's). Each executor gets its own temporary workspace with two pipelines:
one `true` stage (the fixed cost: start-up, and for Dask importing distributed and
connecting) and `--stages` independent `true` stages (`depends_on: []`). Each is run
once unmeasured (registering the definition), then `--reps` times as one
`orchestrate --workspace WS pipeline run NAME --plain -j J` process; runs of the two
executors alternate. Per-stage overhead = (many - one) / (stages - 1), medians.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import child_env, machine_info  # bench/ is not a package

DASK = str(Path(sys.executable).with_name("dask"))
ORCHESTRATE = [sys.executable, "-m", "orchestrate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(workers: int, threads: int, logs: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=open(logs / "scheduler.log", "wb"),  # noqa: SIM115 - lives as long as the process
        )
    ]
    for i in range(workers):
        procs.append(
            subprocess.Popen(
                [
                    *(DASK, "worker", address, "--name", f"w{i + 1}", "--nthreads", str(threads)),
                    *("--no-nanny", "--no-dashboard", "--host", "127.0.0.1"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(logs / f"w{i + 1}.log", "wb"),  # noqa: SIM115
            )
        )
    with Client(address, timeout=30) as client:
        client.wait_for_workers(workers, timeout=60)
    return address, procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def workspace(root: Path, executor: str, stages: int, address: str | None) -> Path:
    ws = root / executor
    (ws / "pipelines.d").mkdir(parents=True)
    config = {"defaults": {"max_parallel": 4}}
    if address:
        config["dask"] = {"scheduler": address}  # type: ignore[assignment]
    (ws / "orchestrate.yaml").write_text(json.dumps(config))
    line = "    executor: dask\n" if executor == "dask" else ""
    for name, count in (("one", 1), ("many", stages)):
        body = "".join(f"  - name: s{i}\n{line}    depends_on: []\n    run: 'true'\n" for i in range(count))
        (ws / "pipelines.d" / f"{name}.yaml").write_text(f"name: {name}\nstages:\n{body}")
    return ws


def run(ws: Path, pipeline: str, parallel: int, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*ORCHESTRATE, "--workspace", str(ws), "pipeline", "run", pipeline, "--plain", "-j", str(parallel)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if " failed" in line or "cancelled" in line]
        raise SystemExit(
            f"{ws.name}/{pipeline} failed ({done.returncode}): {done.stderr.strip()[-400:]}\n"
            + "\n".join(failed[:10])
        )
    return wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stages", type=int, default=1000)
    parser.add_argument("-j", "--max-parallel", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="threads per Dask worker")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="orchestrate-bench-dask-"))
    env = child_env(root / "pycache")
    samples: dict[str, dict[str, list[float]]] = {e: {"one": [], "many": []} for e in ("local", "dask")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print(f"starting a scheduler and {args.workers} workers ...", file=sys.stderr)
        address, procs = start_cluster(args.workers, args.threads, root)
        spaces = {e: workspace(root, e, args.stages, address if e == "dask" else None) for e in samples}
        for ws in spaces.values():  # warm-up: registers the definitions, fills the bytecode cache
            for pipeline in ("one", "many"):
                run(ws, pipeline, args.max_parallel, env)
        for rep in range(args.reps):
            for executor, ws in spaces.items():
                for pipeline in ("one", "many"):
                    wall = run(ws, pipeline, args.max_parallel, env)
                    samples[executor][pipeline].append(wall)
                    print(f"rep {rep + 1} {executor:5} {pipeline:4} {wall:7.2f}s", file=sys.stderr)
    finally:
        stop(procs)
        shutil.rmtree(root, ignore_errors=True)

    figures: dict[str, Any] = {}
    for executor, by in samples.items():
        one, many = statistics.median(by["one"]), statistics.median(by["many"])
        figures[executor] = {
            "one_stage_s": one,
            "many_stages_s": many,
            "per_stage_ms": (many - one) / max(1, args.stages - 1) * 1000,
            "stages_per_s": args.stages / many,
        }
    report = {
        "stages": args.stages,
        "max_parallel": args.max_parallel,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "reps": args.reps,
        "figures": figures,
        "samples": samples,
        "machine": machine_info(),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    m = report["machine"]
    print(f"{m['processor']} ({m['nproc']} CPUs), Python {m['python']}, commit {m['commit']}")
    print(
        f"{args.stages} independent `true` stages, -j {args.max_parallel}; Dask: {args.workers} workers x "
        f"{args.threads} threads on loopback; median of {args.reps}"
    )
    print(f"{'executor':9} {'1 stage':>9} {f'{args.stages} stages':>12} {'per stage':>11} {'stages/s':>9}")
    for executor, f in figures.items():
        print(
            f"{executor:9} {f['one_stage_s']:8.2f}s {f['many_stages_s']:11.2f}s "
            f"{f['per_stage_ms']:8.2f} ms {f['stages_per_s']:9.1f}"
        )
    extra = figures["dask"]["per_stage_ms"] - figures["local"]["per_stage_ms"]
    print(
        f"Dask adds {extra:.2f} ms per stage and {figures['dask']['one_stage_s'] - figures['local']['one_stage_s']:.2f} s per run"
    )
    if os.environ.get("CI"):
        print("(CI machine: figures are indicative only)")


if __name__ == "__main__":
    main()
