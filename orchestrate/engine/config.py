"""What a run needs to be scheduled, and the seams the engine is driven through.

RunConfig       everything one run needs (definition, variables, limits, secrets, gate, ...)
Executor        does one attempt of a stage (SubprocessExecutor; tests swap in fakes)
ApprovalGate    where requires_approval stages open and await their requests
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from orchestrate.domain.approvals import GateDecision
from orchestrate.domain.experiments import Assignment
from orchestrate.domain.records import EventInfo
from orchestrate.domain.state import StageState
from orchestrate.domain.status import RunStatus
from orchestrate.engine.masking import Masker
from orchestrate.engine.process import ProcessResult, run_process
from orchestrate.spec.model import PipelineSpec, StageSpec

if TYPE_CHECKING:
    from orchestrate.engine.budget import BudgetGuard

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,\[\]+-]")


def safe_name(stage: str) -> str:
    """A stage name as a file name (logs/<run>/<stage>.log)."""
    return _UNSAFE.sub("_", stage)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"


@dataclass(frozen=True)
class Job:
    run_id: str
    stage: str
    attempt: int
    argv: tuple[str, ...]
    env: Mapping[str, str]
    log_path: str
    output_path: str
    # Called once, as soon as the work has started (with its process id, if it has one).
    on_start: Callable[[int | None], None] = lambda pid: None


class ApprovalGate(Protocol):
    """Where approval requests live (the store, in practice); the engine only opens and awaits them."""

    async def open(self, stage: StageSpec, iteration: int) -> tuple[str, str]:
        """Open (or find) the request for this stage and iteration: (request id, what to type)."""
        ...

    async def wait(self, request_id: str) -> GateDecision: ...


class Executor(Protocol):
    """The seam between scheduling and doing: the engine's tests swap it for a fake."""

    async def run(self, job: Job) -> ProcessResult: ...


class SubprocessExecutor:
    def __init__(self, grace: float = 5.0, masker: Masker | None = None) -> None:
        self.grace = grace
        self.masker = masker

    async def run(self, job: Job) -> ProcessResult:
        return await run_process(job.argv, job.env, job.log_path, self.grace, job.on_start, self.masker)


@dataclass(frozen=True)
class RunConfig:
    run_id: str
    spec: PipelineSpec
    log_dir: str  # logs/<run>
    workspace: str
    variables: Mapping[str, str] = field(default_factory=dict)
    base_env: Mapping[str, str] = field(default_factory=dict)
    max_parallel: int = 4
    default_timeout: float | None = None
    # Stages as an earlier process left them (resume): succeeded and skipped ones are kept,
    # unless named in ``rerun``; attempt numbers continue from theirs.
    previous: Mapping[str, StageState] = field(default_factory=dict)
    rerun: frozenset[str] = frozenset()
    event: EventInfo | None = None  # what triggered the run: ${event.*}, and when: branch/paths/labels
    # argv that runs pipeline NAME as a child run with these variables (``uses:`` stages)
    child_command: Callable[[str, Mapping[str, str]], list[str]] | None = None
    # Secret values by name: given to the stages that declare them, masked in every log and output.
    secrets: Mapping[str, str] = field(default_factory=dict)
    gate: ApprovalGate | None = None  # where requires_approval stages open their requests
    agents: Mapping[str, AgentConfig] = field(default_factory=dict)  # orchestrate.yaml agents:
    approval: Mapping[str, str] = field(default_factory=dict)  # ${approval.feedback}, ${approval.iteration}
    variants: tuple[Assignment, ...] = ()  # the run's experiment variants: ${variant.NAME}, {model}
    budget: BudgetGuard | None = None  # budget: of the pipeline and its stages (engine.budget)


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    reason: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    """An agent of orchestrate.yaml: how a stage with ``agent: NAME`` and ``task:`` runs (DESIGN §6)."""

    name: str
    command: tuple[str, ...]  # argv template: {task}, {model}, {workspace} fill one element each
    env: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    executor: str | None = None  # a label for metrics (e.g. claude-code)
    timeout: float | None = None
    usage: str = "outputs"  # outputs | json-last-line | claude-json
    usage_paths: Mapping[str, str] = field(default_factory=dict)  # json-last-line: key → dotted path
