"""Secrets (issue 5): values from the environment or the workspace's secrets file, never stored.

``secrets: [API_TOKEN]`` on a pipeline gives every stage that variable; on a stage,
that stage alone. Values come from the environment, else from the dotenv file named
by ``secrets_file:`` in orchestrate.yaml. The engine masks every value as ``***`` in
logs, outputs, errors and commands, so the store and checkpoints never see one.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrate.domain.errors import UsageError
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec


def names(spec: PipelineSpec) -> list[str]:
    return list(dict.fromkeys([*spec.secrets, *(n for s in spec.stages for n in s.secrets)]))


def resolve(settings: Settings, spec: PipelineSpec, env: Mapping[str, str]) -> dict[str, str]:
    wanted = names(spec)
    if not wanted:
        return {}
    from_file: dict[str, str | None] = {}
    file = settings.config.get("secrets_file")
    if file:
        path = settings.root / str(file)
        if not path.is_file():
            raise UsageError(
                f"orchestrate.yaml: secrets_file: {file}: no such file",
                hint="create it (KEY=value lines), or remove secrets_file",
            )
        from dotenv import dotenv_values

        from_file = dict(dotenv_values(path))
    values: dict[str, str] = {}
    missing = []
    for name in wanted:
        value = env.get(name) or from_file.get(name)
        if value:
            values[name] = value
        else:
            missing.append(name)
    if missing:
        where = (
            f"or add it to {file}" if file else "or name a dotenv file with secrets_file: in orchestrate.yaml"
        )
        raise UsageError(
            f"pipeline {spec.name}: secret {', '.join(missing)} is not set",
            hint=f"export {missing[0]}=…, {where}",
        )
    return values
