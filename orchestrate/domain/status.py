"""Run and stage statuses (DESIGN §3). Tokens are stored: never rename one."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Waiting for the worker to start it (`pipeline run --queue`, or a concurrency limit
    # with on_conflict: queue). Not active: no process owns it, so it is never orphaned.
    QUEUED = "queued"


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"


RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
RUN_ACTIVE = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING_APPROVAL})
STAGE_TERMINAL = frozenset(
    {
        StageStatus.SUCCEEDED,
        StageStatus.FAILED,
        StageStatus.CANCELLED,
        StageStatus.SKIPPED,
        StageStatus.ROLLED_BACK,
    }
)
# A dependency in one of these states lets its dependents start.
STAGE_SATISFIED = frozenset({StageStatus.SUCCEEDED, StageStatus.SKIPPED})
STAGE_ACTIVE = frozenset({StageStatus.RUNNING, StageStatus.WAITING_APPROVAL})


class OnFailure(StrEnum):
    HALT = "halt"
    CONTINUE = "continue"
    ROLLBACK = "rollback"


class ExitCode(IntEnum):
    """Process exit codes, documented in README.md ("Exit codes")."""

    OK = 0
    RUN_FAILED = 1  # the run failed or was cancelled
    INVALID_INPUT = 2  # bad usage, bad definition, unknown name
    WAITING_APPROVAL = 3  # the run stopped at an approval gate
    INTERNAL = 70  # a bug: --debug shows the traceback
    INTERRUPTED = 130  # Ctrl-C
