from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrate.store import Store
from tests.cli.helpers import store_at


@pytest.fixture
def store(workspace: Path) -> Iterator[Store]:
    with store_at(workspace) as opened:
        yield opened
