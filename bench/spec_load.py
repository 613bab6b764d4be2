"""How long validating a 1,000-stage definition takes (the figure tests/spec no longer asserts).

    .venv/bin/python bench/spec_load.py

Loads the same text tests/spec/test_loader.py builds (1,000 stages with references,
retries, timeouts, env and some extra dependencies) once to warm the validator, then
times `--reps` loads and prints the median and the fastest. Figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrate.spec.loader import load_pipeline_text
from tests.spec.test_loader import thousand_stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    text = thousand_stages()
    load_pipeline_text(text, "big.yaml")  # warm: the validator is built once per process
    times = []
    for _ in range(args.reps):
        started = time.perf_counter()
        load_pipeline_text(text, "big.yaml")
        times.append(time.perf_counter() - started)
    print(f"load 1,000 stages: median {statistics.median(times):.3f} s, fastest {min(times):.3f} s "
          f"({args.reps} loads; target well under 1 s)")  # fmt: skip


if __name__ == "__main__":
    main()
