"""Start-up is a feature (CONVENTIONS §10): --help imports none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlmodel", "sqlalchemy", "networkx", "jsonschema", "anyio")


def imported_modules(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestrate", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "orchestrate.cli.app" in names  # the measurement saw our own imports
    return names


def test_help_imports_no_heavy_library() -> None:
    for args in (("--help",), ("pipeline", "--help"), ("pipeline", "run", "--help")):
        names = imported_modules(*args)
        assert not [m for m in names if m.split(".")[0] in HEAVY], args
