"""``orchestrate agent list|check``: the agents of orchestrate.yaml (DESIGN §6)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrate.cli.common import handle_errors, settings
from orchestrate.domain.status import ExitCode

app = typer.Typer(
    help="The agents stages can name with agent: (from orchestrate.yaml).\n\nExample:\n\n  orchestrate agent check claude",
    no_args_is_help=True,
)


@app.command("list")
@handle_errors
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The agents: command, model, executor, usage format, and whether the program is found.

    Example:

      orchestrate agent list
    """
    from orchestrate.services.agents import on_path, parse_agents

    agents = parse_agents(settings().config)
    rows = [
        {
            "name": a.name,
            "command": list(a.command),
            "model": a.model,
            "executor": a.executor,
            "usage": a.usage,
            "timeout": a.timeout,
            "found": on_path(a),
        }
        for a in agents.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no agents in orchestrate.yaml (see README: Agents)")
    for agent in agents.values():
        where = on_path(agent) or "NOT FOUND on PATH"
        typer.echo(
            f"{agent.name}: {' '.join(agent.command)}  (model {agent.model or '-'}, usage {agent.usage}) → {where}"
        )


@app.command("check")
@handle_errors
def check(name: Annotated[str, typer.Argument(help="Agent name.")]) -> None:
    """Is the agent's program on PATH? Exit 0 if it is, 1 if not.

    Example:

      orchestrate agent check claude
    """
    import difflib

    from orchestrate.domain.errors import NotFoundError
    from orchestrate.services.agents import on_path, parse_agents

    agents = parse_agents(settings().config)
    if name not in agents:
        close = difflib.get_close_matches(name, agents, n=1)
        raise NotFoundError(
            f'unknown agent "{name}"',
            hint=f'did you mean "{close[0]}"?' if close else f"agents: {', '.join(agents) or 'none'}",
        )
    found = on_path(agents[name])
    if found is None:
        typer.echo(f"{name}: {agents[name].command[0]} is not on PATH", err=True)
        raise typer.Exit(int(ExitCode.RUN_FAILED))
    typer.echo(f"{name}: {found}")
