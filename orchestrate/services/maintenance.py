"""``orchestrate gc``: prune old finished runs with their logs and checkpoints; never an active run."""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING

from orchestrate.domain.errors import UsageError
from orchestrate.settings import Settings

if TYPE_CHECKING:
    from orchestrate.store import Store


def gc(
    settings: Settings, store: Store, keep_days: float | None, keep_runs: int | None, dry_run: bool
) -> list[str]:
    """The ids of the runs removed (or that would be, with ``dry_run``)."""
    if keep_days is None and keep_runs is None:
        raise UsageError(
            "say what to keep", hint="orchestrate gc --keep-days 30, or --keep-runs 100 (per pipeline)"
        )
    if keep_days is not None and keep_days < 0:
        raise UsageError(f"--keep-days must be 0 or more, got {keep_days:g}")
    if keep_runs is not None and keep_runs < 0:
        raise UsageError(f"--keep-runs must be 0 or more, got {keep_runs}")
    before = time.time() - keep_days * 86400 if keep_days is not None else None
    ids = store.prunable(before, keep_runs)  # finished runs only: an active run is never touched
    if dry_run:
        return ids
    for run_id in ids:
        store.delete_run(run_id)
        for folder in (settings.logs_dir / run_id, settings.checkpoints_dir / run_id):
            shutil.rmtree(folder, ignore_errors=True)
    return ids
