from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrate.store import Store, open_store


@pytest.fixture
def store(workspace: Path) -> Iterator[Store]:
    with open_store(workspace / "orchestrate.db") as opened:
        yield opened
