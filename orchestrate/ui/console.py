"""Consoles and the error printer, so adapters never construct Rich objects themselves."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.markup import escape


def stdout_console() -> Console:
    if sys.stdout.isatty():
        return Console(highlight=False)
    # Piped output is not squeezed into 80 columns: tables and lines stay whole for grep and logs.
    width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(highlight=False, soft_wrap=True, width=width)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_error_lines(lines: list[str], *, label: bool) -> None:
    """User errors on stderr: the first line prefixed ``error:`` unless it already says where."""
    console = stderr_console()
    for i, line in enumerate(lines):
        text = escape(line)
        if line.lstrip().startswith("hint:"):
            console.print(f"[cyan]{text}[/]", soft_wrap=True)
        elif i == 0 and label:
            console.print(f"[bold red]error:[/] {text}", soft_wrap=True)
        else:
            console.print(f"[red]{text}[/]" if not line.startswith(" ") else text, soft_wrap=True)
