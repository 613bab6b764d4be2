"""Where the workspace is and how it is configured, resolved once per command.

Precedence (CONVENTIONS §11): command-line flag > ``ORCHESTRATE_*`` environment >
``orchestrate.yaml`` > built-in defaults. Nothing below this module reads
``os.environ``; the engine and the store receive values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrate.domain.errors import UsageError, WorkspaceError

CONFIG_FILE = "orchestrate.yaml"
DEFAULT_MAX_PARALLEL = 4


@dataclass(frozen=True)
class Settings:
    root: Path
    config: Mapping[str, Any] = field(default_factory=dict)
    max_parallel_env: int | None = None  # ORCHESTRATE_MAX_PARALLEL
    max_parallel_config: int | None = None  # orchestrate.yaml defaults.max_parallel
    default_timeout: float | None = None
    user: str = ""
    database_url: str | None = None
    dask_scheduler: str | None = None  # ORCHESTRATE_DASK_SCHEDULER > orchestrate.yaml dask.scheduler

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines.d"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def store_location(self) -> Path | str:
        """Where the store is: the SQLite file, or a PostgreSQL URL (ORCHESTRATE_DATABASE_URL)."""
        url = self.database_url
        if url and url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
            return url
        return self.db_path

    @property
    def db_path(self) -> Path:
        url = self.database_url
        if url:
            for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
                if url.startswith(prefix):
                    return Path(url[len(prefix) :])
            raise WorkspaceError(
                f"ORCHESTRATE_DATABASE_URL: {url.split(':', 1)[0]} is not supported by this version",
                hint="use sqlite:///path/to/orchestrate.db or postgresql+psycopg://user@host/db, "
                "or unset it to use the workspace's orchestrate.db",
            )
        return self.root / "orchestrate.db"


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding orchestrate.yaml (as git finds .git)."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def resolve(workspace: Path | None, env: Mapping[str, str], cwd: Path) -> Settings:
    """Settings for a command that needs a workspace; WorkspaceError when there is none."""
    if workspace is not None:
        root = workspace.resolve()
        if not root.is_dir():
            raise WorkspaceError(
                f"--workspace {workspace}: no such folder",
                hint=f"create one with: orchestrate init {workspace}",
            )
    elif env.get("ORCHESTRATE_HOME"):
        root = Path(env["ORCHESTRATE_HOME"]).resolve()
        if not root.is_dir():
            raise WorkspaceError(f"ORCHESTRATE_HOME={root}: no such folder")
    else:
        found = find_root(cwd)
        if found is None:
            raise WorkspaceError(
                f"no workspace here: no {CONFIG_FILE} in {cwd} or any folder above it",
                hint="create one with: orchestrate init DIR, or pass --workspace DIR",
            )
        root = found
    config = load_config(root / CONFIG_FILE)
    defaults = config.get("defaults") or {}
    max_parallel_env = _int_setting(env.get("ORCHESTRATE_MAX_PARALLEL"), "ORCHESTRATE_MAX_PARALLEL")
    max_parallel_config = _int_setting(defaults.get("max_parallel"), f"{CONFIG_FILE}: defaults.max_parallel")
    timeout = None
    if "timeout" in defaults:
        from orchestrate.spec.durations import parse_duration

        try:
            timeout = parse_duration(defaults["timeout"])
        except ValueError as e:
            raise WorkspaceError(f"{root / CONFIG_FILE}: defaults.timeout: {e}") from None
    user = env.get("ORCHESTRATE_USER") or env.get("USER") or env.get("LOGNAME") or _os_user()
    return Settings(
        root=root,
        config=config,
        max_parallel_env=max_parallel_env,
        max_parallel_config=max_parallel_config,
        default_timeout=timeout,
        user=user,
        database_url=env.get("ORCHESTRATE_DATABASE_URL") or None,
        dask_scheduler=env.get("ORCHESTRATE_DASK_SCHEDULER") or _dask_scheduler(config, root / CONFIG_FILE),
    )


def _dask_scheduler(config: Mapping[str, Any], path: Path) -> str | None:
    """orchestrate.yaml ``dask: {scheduler: tcp://HOST:8786}``: where ``executor: dask`` stages run."""
    dask = config.get("dask")
    if dask is None:
        return None
    address = dask.get("scheduler") if isinstance(dask, Mapping) else None
    if not isinstance(address, str) or not address.strip():
        raise WorkspaceError(
            f"{path}: dask.scheduler: expected the scheduler's address",
            hint="e.g. dask: {scheduler: tcp://10.0.0.5:8786}",
        )
    return address.strip()


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (some containers)
        return f"uid{os.getuid()}"


def _int_setting(value: object, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise UsageError(f"{where}: {value!r} is not a whole number") from None
    if number < 1:
        raise UsageError(f"{where}: must be at least 1, got {number}")
    return number


def load_config(path: Path) -> dict[str, Any]:
    """orchestrate.yaml as a mapping; {} when absent. Errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise WorkspaceError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WorkspaceError(f"{path}: must be a mapping of settings, got {type(data).__name__}")
    return data


def max_parallel_for(flag: int | None, settings: Settings, pipeline_default: int | None) -> int:
    """flag > ORCHESTRATE_MAX_PARALLEL > the pipeline's defaults > orchestrate.yaml > 4."""
    for value in (flag, settings.max_parallel_env, pipeline_default, settings.max_parallel_config):
        if value is not None:
            return value
    return DEFAULT_MAX_PARALLEL
