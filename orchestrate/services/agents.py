"""Agents from orchestrate.yaml (DESIGN §6; issue 8): parsed once, checked before a run starts.

```yaml
agents:
  claude: {command: ["claude", "-p", "{task}", "--output-format", "json"], usage: claude-json, model: sonnet}
  coder:  {command: ["aider", "--message", "{task}"], env: {AIDER_MODEL: gpt-5}, timeout: 30m, executor: aider}
  local:  {command: ["./agent.sh", "{task}"], usage: json-last-line, usage_paths: {cost_usd: usage.cost}}
```
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from orchestrate.domain.errors import SpecError, SpecIssue, WorkspaceError
from orchestrate.engine.config import AgentConfig
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec

USAGES = ("outputs", "json-last-line", "claude-json")
KEYS = ("command", "env", "model", "executor", "timeout", "usage", "usage_paths")


def parse_agents(config: Mapping[str, Any]) -> dict[str, AgentConfig]:
    """orchestrate.yaml ``agents:``; a bad entry is a one-line error naming its field."""
    from orchestrate.spec.durations import parse_duration

    raw = config.get("agents") or {}
    if not isinstance(raw, Mapping):
        raise WorkspaceError("orchestrate.yaml: agents: must be a mapping of agent names")
    agents: dict[str, AgentConfig] = {}
    for name, entry in raw.items():
        where = f"orchestrate.yaml: agents.{name}"
        if not isinstance(entry, Mapping):
            raise WorkspaceError(f"{where}: must be a mapping with a command")
        for key in entry:
            if key not in KEYS:
                close = difflib.get_close_matches(str(key), KEYS, n=1)
                raise WorkspaceError(
                    f"{where}.{key}: unknown key",
                    hint=f'did you mean "{close[0]}"?' if close else f"keys: {', '.join(KEYS)}",
                )
        command = entry.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(c, str | int | float) for c in command)
        ):
            raise WorkspaceError(
                f'{where}.command: expected a list of arguments, e.g. ["claude", "-p", "{{task}}"]'
            )
        usage = str(entry.get("usage", "outputs"))
        if usage not in USAGES:
            raise WorkspaceError(f"{where}.usage: {usage!r} is not one of {', '.join(USAGES)}")
        timeout = entry.get("timeout")
        try:
            seconds = parse_duration(timeout) if timeout is not None else None
        except ValueError as e:
            raise WorkspaceError(f"{where}.timeout: {e}") from None
        agents[str(name)] = AgentConfig(
            name=str(name),
            command=tuple(str(c) for c in command),
            env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
            model=str(entry["model"]) if entry.get("model") else None,
            executor=str(entry.get("executor") or name),
            timeout=seconds,
            usage=usage,
            usage_paths={str(k): str(v) for k, v in (entry.get("usage_paths") or {}).items()},
        )
    return agents


def check_pipeline(settings: Settings, spec: PipelineSpec) -> None:
    """Unknown agents and python functions that cannot be found: errors with file and line."""
    agents = parse_agents(settings.config)
    issues = []
    for i, stage in enumerate(spec.stages):
        if stage.agent is not None and stage.agent not in agents:
            close = difflib.get_close_matches(stage.agent, agents, n=1)
            hint = (
                f'did you mean "{close[0]}"?'
                if close
                else f"agents in orchestrate.yaml: {', '.join(agents) or 'none'}"
            )
            issues.append(
                SpecIssue(
                    spec.path, stage.line, None, f"stages[{i}].agent", f'unknown agent "{stage.agent}"', hint
                )
            )
        if stage.python is not None:
            module = stage.python.partition(":")[0]
            root = str(settings.root)
            if root not in sys.path:
                sys.path.insert(0, root)
            try:
                found = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                found = None
            if found is None:
                issues.append(
                    SpecIssue(
                        spec.path,
                        stage.line,
                        None,
                        f"stages[{i}].python",
                        f'cannot find module "{module}"',
                        "it must be importable from the workspace or the environment",
                    )
                )
    if issues:
        raise SpecError(issues)


def on_path(agent: AgentConfig) -> str | None:
    """Where the agent's executable is, or None."""
    program = agent.command[0]
    if "/" in program:
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program)
