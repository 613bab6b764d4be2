"""``orchestrate init``: lay out a workspace (DESIGN §1) without overwriting anything."""

from __future__ import annotations

from pathlib import Path

CONFIG = """\
# orchestrate workspace configuration (see README.md, "Configuration").
# Precedence: command-line flag > ORCHESTRATE_* environment > this file > built-in defaults.
defaults:
  max_parallel: 4      # stages running at once in one run
  timeout: 1h          # per stage, unless the pipeline or stage says otherwise

# Agents a stage can name with `agent:` (argv templates; {task} is one argument, never a shell string).
agents: {}
#  claude: {command: ["claude", "-p", "{task}", "--output-format", "json"], usage: claude-json, model: sonnet}

# Approver groups for `approvers:` on gated stages.
groups: {}
#  team-lead: [alice]
"""

HELLO = """\
# A first pipeline: `orchestrate pipeline run hello`.
# Stages run in file order unless they say otherwise; `parallel_with` runs two side by side.
name: hello
description: Say hello, check the machine, and report.
variables:
  greeting: hello
stages:
  - name: greet
    run: echo "${greeting} from $ORCHESTRATE_STAGE of run $ORCHESTRATE_RUN_ID"
  - name: disk
    run: df -h .
  - name: python
    run: python3 --version
    parallel_with: disk
  - name: report
    depends_on: [disk, python]
    run: echo "all checks done"
"""

GITIGNORE = """\
orchestrate.db
orchestrate.db-*
logs/
checkpoints/
"""


def init_workspace(folder: Path) -> list[str]:
    """Create what is missing; return the paths created (empty if the workspace was complete)."""
    created: list[str] = []
    if folder.exists() and not folder.is_dir():
        from orchestrate.domain.errors import WorkspaceError

        raise WorkspaceError(
            f"{folder}: exists and is not a folder", hint="choose another path for the workspace"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("pipelines.d", "checkpoints", "logs"):
        path = folder / sub
        if not path.exists():
            path.mkdir()
            created.append(sub + "/")
    for name, text in (
        ("orchestrate.yaml", CONFIG),
        ("pipelines.d/hello.yaml", HELLO),
        (".gitignore", GITIGNORE),
    ):
        path = folder / name
        if name == "pipelines.d/hello.yaml" and "pipelines.d/" not in created:
            continue  # an existing pipelines.d is the user's: add nothing to it
        if not path.exists():
            path.write_text(text, encoding="utf-8")
            created.append(name)
    return created
