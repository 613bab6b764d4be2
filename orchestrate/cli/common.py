"""What every command shares: global options, and the one place exceptions become exit codes."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from orchestrate.domain.errors import OrchestrateError, SpecError
from orchestrate.domain.status import ExitCode

if TYPE_CHECKING:
    from orchestrate.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Globals:
    workspace: Path | None = None
    debug: bool = False


GLOBALS = Globals()


def settings() -> Settings:
    from orchestrate import settings as s

    return s.resolve(GLOBALS.workspace, os.environ, Path.cwd())


def exit_for(exc: BaseException) -> int:
    """The one mapping from an exception to an exit code (CONVENTIONS §7)."""
    if isinstance(exc, OrchestrateError):
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.INTERNAL)


def _missing_table(e: Exception) -> str | None:
    """The table named by "no such table" (SQLite) or "relation ... does not exist" (PostgreSQL)."""
    import re

    text = str(e)
    found = re.search(r"no such table: (\w+)", text) or re.search(r'relation "(\w+)" does not exist', text)
    return found.group(1) if found else None


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """User errors print one clear message (no traceback); bugs exit 70 (--debug shows the traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except OrchestrateError as e:
            from orchestrate.ui.console import print_error_lines

            print_error_lines(e.lines(), label=not isinstance(e, SpecError))
            raise typer.Exit(exit_for(e)) from None
        except KeyboardInterrupt:
            from orchestrate.ui.console import print_error_lines

            print_error_lines(["interrupted"], label=True)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as e:
            from orchestrate.ui.console import print_error_lines

            if GLOBALS.debug:
                traceback.print_exc(file=sys.stderr)
            missing = _missing_table(e)
            if missing is not None:  # a store whose schema an unreleased build left behind
                print_error_lines(
                    [
                        f"error: the store has no table {missing}: its schema is older than this orchestrate",
                        "hint: orchestrate db upgrade adds what is missing (its rows are kept)",
                    ],
                    label=False,
                )
                raise typer.Exit(int(ExitCode.INVALID_INPUT)) from None
            print_error_lines(
                [
                    f"internal error: {type(e).__name__}: {e}",
                    "hint: this is a bug; rerun with --debug for the traceback",
                ],
                label=False,
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None

    return wrapper
