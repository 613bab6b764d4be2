"""What every benchmark shares: the environment of measured processes, and the machine's description."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def child_env(pycache: Path | None) -> dict[str, str]:
    """The caller's environment minus ORCHESTRATE_* (it must not move the workspace or the database).

    With ``pycache``, bytecode is cached in that private folder even if the caller set
    PYTHONDONTWRITEBYTECODE: an installed package has its .pyc files, and without them every
    run would compile orchestrate's modules again (about 30 ms here), which users do not pay.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATE_")}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def machine_info() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str | None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
        except OSError:
            return None
        return done.stdout.splitlines()[0].strip() if done.returncode == 0 and done.stdout else None

    try:
        from importlib.metadata import version

        orchestrate_version: str | None = version("orchestrate")
    except Exception:
        orchestrate_version = None
    commit = first_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "make": first_line(["make", "--version"]),
        "orchestrate": orchestrate_version,
        "commit": None if commit is None else commit + ("+dirty" if dirty else ""),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
