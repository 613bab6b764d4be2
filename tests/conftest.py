from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace (orchestrate.yaml, pipelines.d/) as the current directory."""
    root = tmp_path / "ws"
    (root / "pipelines.d").mkdir(parents=True)
    (root / "orchestrate.yaml").write_text("defaults: {max_parallel: 4}\n")
    monkeypatch.chdir(root)
    for key in list(os.environ):
        if key.startswith("ORCHESTRATE_"):
            monkeypatch.delenv(key)
    return root


@pytest.fixture
def pipeline_file(workspace: Path) -> Callable[[str, str], Path]:
    """Write dedented YAML to pipelines.d/NAME.yaml and return its path."""

    def write(name: str, yaml_text: str) -> Path:
        path = workspace / "pipelines.d" / f"{name}.yaml"
        path.write_text(textwrap.dedent(yaml_text).lstrip())
        return path

    return write
