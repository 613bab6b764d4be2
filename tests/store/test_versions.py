"""Pipeline versions: a digest registered once, numbered 1..n per pipeline."""

from __future__ import annotations

from pathlib import Path

from orchestrate.store import Store
from tests.store.helpers import rows


def register(store: Store, pipeline: str, digest: str, text: str = "name: x\n") -> int:
    return store.register_version(
        pipeline, digest, f"pipelines.d/{pipeline}.yaml", text, f'{{"d":"{digest}"}}'
    )


def test_register_is_idempotent_and_numbers_new_digests(store: Store, db_path: Path) -> None:
    assert register(store, "ci", "d1") == 1
    assert register(store, "ci", "d1") == 1
    assert register(store, "ci", "d2") == 2
    assert register(store, "ci", "d1") == 1  # going back to an older text reuses its version
    assert register(store, "cd", "d1") == 1  # numbering is per pipeline
    assert rows(db_path, "select pipeline, version, digest from pipeline_versions order by id") == [
        ("ci", 1, "d1"),
        ("ci", 2, "d2"),
        ("cd", 1, "d1"),
    ]
    assert rows(db_path, "select name, enabled from pipelines order by name") == [("cd", 1), ("ci", 1)]


def test_compiled_definition(store: Store) -> None:
    assert store.compiled_definition("ci", "d1") is None
    register(store, "ci", "d1")
    assert store.compiled_definition("ci", "d1") == (1, '{"d":"d1"}')
    assert store.compiled_definition("cd", "d1") is None


def test_text_is_stored_exactly(store: Store, db_path: Path) -> None:
    text = "name: ci  # comment\nstages:\n  - {name: a, run: 'echo ünïcode'}\n\n"
    register(store, "ci", "d1", text)
    assert rows(db_path, "select text from pipeline_versions") == [(text,)]
