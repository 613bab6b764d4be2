from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

GATED = """
name: gated
variables: {target: staging}
stages:
  - name: build
    run: echo built ${target}
  - name: test
    run: echo tested
  - name: lint
    run: echo linted
    parallel_with: test
  - name: deploy-gate
    requires_approval: true
    approvers: [release]
    depends_on: [test, lint]
  - name: deploy
    run: echo deployed ${target}
"""


@pytest.fixture
def api_workspace(workspace: Path) -> Path:
    """A workspace with a gated pipeline: approvers group release = alice, carol (not bob)."""
    (workspace / "orchestrate.yaml").write_text(
        "defaults: {max_parallel: 4}\ngroups: {release: [alice, carol]}\n"
    )
    (workspace / "pipelines.d" / "gated.yaml").write_text(textwrap.dedent(GATED).lstrip())
    (workspace / "pipelines.d" / "slow.yaml").write_text(
        "name: slow\nstages:\n  - name: wait\n    run: sleep 30\n"
    )
    return workspace
