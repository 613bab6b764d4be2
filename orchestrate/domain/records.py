"""Plain summaries the store hands to services: pipelines, versions, runs at a glance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrate.domain.status import RunStatus


@dataclass(frozen=True)
class VersionInfo:
    version: int
    digest: str
    path: str
    created_at: float
    text: str = ""
    compiled: str = ""


@dataclass(frozen=True)
class RunSummary:
    id: str
    pipeline: str
    version: int
    status: RunStatus
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    triggered_by: str | None = None
    started_by: str | None = None
    parent_run_id: str | None = None
    pid: int | None = None
    host: str | None = None
    heartbeat_at: float | None = None

    def duration(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return max(0.0, (self.finished_at if self.finished_at is not None else now) - self.started_at)


@dataclass(frozen=True)
class EventInfo:
    """An emitted event: its payload and what it says about the change (branch, labels, files)."""

    id: str
    name: str
    payload: Mapping[str, Any]
    created_at: float
    branch: str | None = None
    labels: tuple[str, ...] = ()
    changed_files: tuple[str, ...] | None = None  # None: not known
    emitted_by: str | None = None
    dry_run: bool = False

    def lookup(self, name: str) -> str | None:
        """``${event.a.b}``: a payload field (or event.name, event.branch); JSON text for non-strings."""
        if not name.startswith("event."):
            return None
        node: Any = {**self.payload, "name": self.name, "branch": self.branch}
        for part in name.removeprefix("event.").split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        if node is None:
            return None
        return node if isinstance(node, str) else json.dumps(node)


@dataclass(frozen=True)
class PipelineInfo:
    name: str
    enabled: bool
    created_at: float
    updated_at: float
    deleted_at: float | None
    latest_version: int | None
    counts: Mapping[RunStatus, int] = field(default_factory=dict)
    last_run: RunSummary | None = None

    @property
    def finished(self) -> int:
        return sum(
            self.counts.get(s, 0) for s in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
        )

    @property
    def success_rate(self) -> float | None:
        """Succeeded among finished runs; None before the first finished run."""
        return self.counts.get(RunStatus.SUCCEEDED, 0) / self.finished if self.finished else None
