from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The PostgreSQL pass (.ci/run, `make test-postgres`): a server URL without a database;
# each workspace then gets a fresh database on it instead of orchestrate.db.
POSTGRES = os.environ.get("ORCHESTRATE_TEST_POSTGRES", "").rstrip("/")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty workspace (orchestrate.yaml, pipelines.d/) as the current directory."""
    root = tmp_path / "ws"
    (root / "pipelines.d").mkdir(parents=True)
    (root / "orchestrate.yaml").write_text("defaults: {max_parallel: 4}\n")
    monkeypatch.chdir(root)
    for key in list(os.environ):
        if key.startswith("ORCHESTRATE_"):
            monkeypatch.delenv(key)
    if not POSTGRES:
        yield root
        return
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = POSTGRES.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    monkeypatch.setenv("ORCHESTRATE_DATABASE_URL", f"{POSTGRES}/{name}")
    yield root
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pipeline_file(workspace: Path) -> Callable[[str, str], Path]:
    """Write dedented YAML to pipelines.d/NAME.yaml and return its path."""

    def write(name: str, yaml_text: str) -> Path:
        path = workspace / "pipelines.d" / f"{name}.yaml"
        path.write_text(textwrap.dedent(yaml_text).lstrip())
        return path

    return write
