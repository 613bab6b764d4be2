"""The pipeline registry: pipelines.d/ is the source of truth, the store keeps every version.

A file edited by hand is picked up at its next use: its text gets a new version
when it validates; when it does not, the error is reported and the last valid
version stays runnable with ``--version``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrate.atomic import write_atomically
from orchestrate.domain.errors import NotFoundError, SpecError, UsageError
from orchestrate.domain.records import PipelineInfo, VersionInfo
from orchestrate.domain.status import RUN_ACTIVE
from orchestrate.services.definitions import definition_files, display_path, load_cached
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.store import Store

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Listed:
    """One row of ``pipeline list``: what the file says now and what the store remembers."""

    name: str
    path: str | None  # None: the file is gone (deleted, or moved away)
    info: PipelineInfo | None
    spec: PipelineSpec | None  # the current valid definition (the file, else the latest version)
    version: int | None
    error: str | None = None  # why the file as it is now does not validate

    @property
    def last_orphaned(self) -> bool:
        """The last run is active in the store but its process is gone."""
        from orchestrate.services.control import orphaned

        last = self.info.last_run if self.info else None
        return last is not None and orphaned(last)


def sync(settings: Settings, store: Store) -> list[Listed]:
    """Read every file in pipelines.d/, registering new versions; plus pipelines known only to the store."""
    rows: dict[str, Listed] = {}
    for path in definition_files(settings.pipelines_dir):
        shown = display_path(path, settings.root)
        try:
            spec, version = load_cached(path, shown, store)
        except SpecError as e:
            name = _declared_name(path) or path.stem
            last = store.version(name)
            valid = PipelineSpec.from_dict(json.loads(last.compiled)) if last else None
            number = last.version if last else None
            rows[name] = Listed(name, shown, store.pipeline(name), valid, number, str(e.issues[0]))
            continue
        rows[spec.name] = Listed(spec.name, shown, store.pipeline(spec.name), spec, version)
    for info in store.pipelines():
        if info.name not in rows and info.deleted_at is None:
            last = store.version(info.name)
            stored = PipelineSpec.from_dict(json.loads(last.compiled)) if last else None
            rows[info.name] = Listed(info.name, None, info, stored, info.latest_version)
    return [rows[name] for name in sorted(rows)]


def _declared_name(path: Path) -> str | None:
    m = re.search(
        r"^name:\s*[\"']?([a-z0-9][a-z0-9._-]*)", path.read_text(encoding="utf-8", errors="replace"), re.M
    )
    return m.group(1) if m else None


def _load_new(file: Path) -> PipelineSpec:
    from orchestrate.spec.loader import load_pipeline

    if not file.is_file():
        raise NotFoundError(f"{file}: no such file", hint="give the path of a pipeline YAML file")
    return load_pipeline(file, display_path=str(file))


def _file_of(settings: Settings, name: str) -> Path | None:
    for path in definition_files(settings.pipelines_dir):
        if path.stem == name or _declared_name(path) == name:
            return path
    return None


def create(settings: Settings, store: Store, file: Path) -> tuple[PipelineSpec, int, Path]:
    """Validate FILE, copy it into pipelines.d/NAME.yaml and register it."""
    spec = _load_new(file)
    existing = _file_of(settings, spec.name)
    if existing is not None:
        raise UsageError(
            f"pipeline {spec.name} already exists ({display_path(existing, settings.root)})",
            hint=f"change it with: orchestrate pipeline update {spec.name} {file}",
        )
    target = settings.pipelines_dir / f"{spec.name}.yaml"
    write_atomically(target, spec.text.encode())
    registered, version = load_cached(target, display_path(target, settings.root), store)
    return registered, version, target


def update(settings: Settings, store: Store, name: str, file: Path) -> tuple[PipelineSpec, int, bool]:
    """Replace NAME's definition with FILE (validated); returns (spec, version, changed)."""
    spec = _load_new(file)
    if spec.name != name:
        raise UsageError(
            f"{file} defines pipeline {spec.name}, not {name}",
            hint=f"set name: {name} in the file, or create it: orchestrate pipeline create {file}",
        )
    target = _file_of(settings, name)
    if target is None:
        raise NotFoundError(
            f'unknown pipeline "{name}"', hint=f"create it with: orchestrate pipeline create {file}"
        )
    before = store.version(name)
    write_atomically(target, spec.text.encode())
    registered, version = load_cached(target, display_path(target, settings.root), store)
    return registered, version, before is None or before.version != version


def require(settings: Settings, store: Store, name: str) -> PipelineInfo:
    """The stored pipeline NAME, registering its file first if it was never used."""
    info = store.pipeline(name)
    if info is None or info.deleted_at is not None:
        path = _file_of(settings, name)
        if path is None:
            known = [row.name for row in sync(settings, store)]
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            raise NotFoundError(
                f'unknown pipeline "{name}"',
                hint=f'did you mean "{close[0]}"?' if close else "orchestrate pipeline list shows them",
            )
        load_cached(path, display_path(path, settings.root), store)
        info = store.pipeline(name)
        assert info is not None
    return info


def set_enabled(settings: Settings, store: Store, name: str, enabled: bool) -> None:
    require(settings, store, name)
    store.set_enabled(name, enabled)


def delete(settings: Settings, store: Store, name: str) -> Path | None:
    """Remove NAME's file and hide it from the registry; its runs stay readable."""
    require(settings, store, name)
    active = [r for r in store.active_runs() if r.pipeline == name and r.status in RUN_ACTIVE]
    if active:
        ids = ", ".join(r.id for r in active[:3])
        raise UsageError(
            f"pipeline {name} has {len(active)} active run(s): {ids}",
            hint=f"wait for them, or cancel: orchestrate pipeline cancel {active[0].id}",
        )
    path = _file_of(settings, name)
    if path is not None:
        path.unlink()
    store.mark_deleted(name)
    return path


def show(
    settings: Settings, store: Store, name: str, version: int | None
) -> tuple[VersionInfo, PipelineSpec]:
    """A version's exact text and model (the current file's version when none is given)."""
    require(settings, store, name)
    if version is None:
        path = _file_of(settings, name)
        if path is not None:
            try:
                load_cached(path, display_path(path, settings.root), store)
            except SpecError:
                pass  # show the last valid version; `pipeline list` reports the error
    info = store.version(name, version)
    if info is None:
        known = ", ".join(str(v.version) for v in store.versions(name)) or "none"
        raise NotFoundError(f"pipeline {name} has no version {version} (registered: {known})")
    return info, PipelineSpec.from_dict(json.loads(info.compiled))


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    path: Path


def templates() -> list[Template]:
    out = []
    for path in sorted(TEMPLATES_DIR.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        _, _, description = first.lstrip("# ").partition(": ")
        out.append(Template(path.stem, description.strip(), path))
    return out


def init_template(settings: Settings, template: str, name: str | None) -> Path:
    """Copy a built-in template into pipelines.d/, renamed if asked."""
    found = {t.name: t for t in templates()}
    if template not in found:
        import difflib

        close = difflib.get_close_matches(template, found, n=1)
        raise NotFoundError(
            f'unknown template "{template}" (templates: {", ".join(found)})',
            hint=f'did you mean "{close[0]}"?' if close else "orchestrate pipeline templates lists them",
        )
    text = found[template].path.read_text(encoding="utf-8")
    target_name = name or template
    if name is not None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
            raise UsageError(f'--name {name!r}: use lowercase letters, digits, ".", "_" and "-"')
        text = re.sub(r"^name:.*$", f"name: {name}", text, count=1, flags=re.M)
    if _file_of(settings, target_name) is not None:
        raise UsageError(
            f"pipeline {target_name} already exists in {settings.pipelines_dir.name}/",
            hint=f"choose another name: orchestrate pipeline init {template} --name {target_name}-2",
        )
    target = settings.pipelines_dir / f"{target_name}.yaml"
    write_atomically(target, text.encode())
    return target
