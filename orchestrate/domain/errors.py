"""User errors. A stage failure is an outcome, not an exception; only these and bugs raise.

OrchestrateError            a user mistake: one line, a hint, exit 2
├── SpecError               an invalid pipeline definition (one or more SpecIssue)
├── UsageError              a bad argument or option value
├── NotFoundError           an unknown pipeline, run, stage or file
├── WorkspaceError          no workspace, or a broken orchestrate.yaml
└── FeatureNotAvailable     valid language that this version cannot run yet
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrate.domain.status import ExitCode


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a definition, located as precisely as the YAML allows."""

    file: str
    line: int | None
    column: int | None
    path: str  # field path, e.g. "stages[3].timeout"; "" for the whole document
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class OrchestrateError(Exception):
    exit_code: ExitCode = ExitCode.INVALID_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        out = [self.message]
        if self.hint:
            out.append(f"hint: {self.hint}")
        return out


class SpecError(OrchestrateError):
    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line or 0, i.column or 0, i.path))
        super().__init__(str(self.issues[0]) if self.issues else "invalid definition")

    def lines(self) -> list[str]:
        out: list[str] = []
        for issue in self.issues:
            out.append(str(issue))
            if issue.hint:
                out.append(f"  hint: {issue.hint}")
        return out


class UsageError(OrchestrateError):
    pass


class NotFoundError(OrchestrateError):
    pass


class WorkspaceError(OrchestrateError):
    pass


class FeatureNotAvailable(OrchestrateError):
    pass
