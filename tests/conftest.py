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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the PostgreSQL pass, skip what only means something for the SQLite file."""
    if not POSTGRES:
        return
    skip = pytest.mark.skip(reason="about the SQLite file itself (the PostgreSQL pass)")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL (no database): ORCHESTRATE_TEST_POSTGRES's, else a private one.

    The private one is started from Debian's packages with .ci/postgres (which .ci/run
    installs), on a free loopback port, and stopped at the end of the session.
    """
    if POSTGRES:
        yield POSTGRES
        return
    import glob
    import subprocess

    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    import shutil
    import tempfile

    # Not under pytest's tmp folder: that is private to root, and as root the server runs
    # as the postgres user, who must reach its data folder.
    folder = tempfile.mkdtemp(prefix="orchestrate-pg-")
    script = Path(__file__).resolve().parent.parent / ".ci" / "postgres"
    try:
        url = subprocess.run(
            [str(script), "start", folder, str(_free_port())], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield url
    finally:
        subprocess.run([str(script), "stop", folder], check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards: its postgresql+psycopg URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{postgres_server}/{name}"
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
