from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.helpers import WorkerProcess


@pytest.fixture
def workers(workspace: Path) -> Iterator[list[WorkerProcess]]:
    """Workers a test starts (append them); all stopped at the end, whatever happened."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.stop()  # SIGTERM: its runs are stopped too (tests pass a short --grace)
