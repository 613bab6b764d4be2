"""Plain summaries the store hands to services: pipelines, versions, runs at a glance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
