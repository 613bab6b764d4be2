"""The reporting commands start fast: their help imports no heavy library, and not the MCP SDK."""

from __future__ import annotations

from tests.cli.test_startup import HEAVY, imported_modules


def test_report_and_mcp_help_import_nothing_heavy() -> None:
    for args in (("report", "--help"), ("report", "job", "start", "--help"), ("mcp", "--help")):
        names = imported_modules(*args)
        assert not [m for m in names if m.split(".")[0] in (*HEAVY, "mcp", "pydantic")], args
