"""The pipeline registry as a reader sees it: pipelines.d/ and the store, never written to.

``registry.sync`` and ``registry.show`` register a file's new text as a version when
they read it (the CLI's "picked up at its next use"). A reader that must not write —
every GET of ``orchestrate serve``, authenticated or not, ``--read-only`` or not —
uses these instead: a file whose text is already a stored version gets that version's
number; a valid file whose text is new is reported as *unregistered* (``version`` None)
and registered by the next run or edit; an invalid file is reported with its issues,
beside the last valid version the store holds (if any).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrate.domain.errors import NotFoundError, SpecError, SpecIssue
from orchestrate.services.definitions import definition_files, digest_of, display_path
from orchestrate.services.registry import Listed
from orchestrate.settings import Settings
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.store import Store

_NAME_LINE = re.compile(r"^name:\s*[\"']?([a-z0-9][a-z0-9._-]*)", re.M)


@dataclass(frozen=True)
class Peeked:
    """A definition file read without registering it."""

    spec: PipelineSpec
    version: int | None  # None: valid, but its text is not a stored version yet


def declared_name(text: str) -> str | None:
    m = _NAME_LINE.search(text)
    return m.group(1) if m else None


def peek(path: Path, shown: str, store: Store) -> Peeked:
    """The file's definition and stored version number; SpecError when it does not validate."""
    text = path.read_text(encoding="utf-8")
    hit = store.compiled_definition(declared_name(text) or path.stem, digest_of(text))
    if hit is not None:
        spec = PipelineSpec.from_dict(json.loads(hit[1]))
        return Peeked(spec if spec.path == shown else replace(spec, path=shown), hit[0])
    from orchestrate.spec.loader import load_pipeline_text

    return Peeked(load_pipeline_text(text, shown), None)


def _stored_spec(store: Store, name: str) -> tuple[PipelineSpec | None, int | None]:
    last = store.version(name)
    if last is None:
        return None, None
    return PipelineSpec.from_dict(json.loads(last.compiled)), last.version


def listing(settings: Settings, store: Store) -> list[tuple[Listed, bool]]:
    """``pipeline list``'s rows, each with whether the file's text is a stored version."""
    rows: dict[str, tuple[Listed, bool]] = {}
    for path in definition_files(settings.pipelines_dir):
        shown = display_path(path, settings.root)
        try:
            found = peek(path, shown, store)
        except SpecError as e:
            name = declared_name(path.read_text(encoding="utf-8", errors="replace")) or path.stem
            spec, number = _stored_spec(store, name)
            rows[name] = (Listed(name, shown, store.pipeline(name), spec, number, str(e.issues[0])), True)
            continue
        name = found.spec.name
        rows[name] = (
            Listed(name, shown, store.pipeline(name), found.spec, found.version),
            found.version is not None,
        )
    for info in store.pipelines():
        if info.name not in rows and info.deleted_at is None:
            spec, _ = _stored_spec(store, info.name)
            rows[info.name] = (Listed(info.name, None, info, spec, info.latest_version), True)
    return [rows[name] for name in sorted(rows)]


def file_of(settings: Settings, name: str) -> Path | None:
    """pipelines.d/NAME.yaml, or the file that declares ``name: NAME``."""
    files = definition_files(settings.pipelines_dir)
    for path in files:
        if path.stem == name:
            return path
    for path in files:
        if declared_name(path.read_text(encoding="utf-8", errors="replace")) == name:
            return path
    return None


@dataclass(frozen=True)
class Definition:
    """One pipeline as the dashboard's editor shows it."""

    name: str
    path: str | None  # the file, relative to the workspace; None when it is gone
    text: str  # the file's text (or the stored version's, when asked for one or the file is gone)
    spec: PipelineSpec | None  # the valid definition: the file's, else the last stored version's
    version: int | None  # the version of ``spec``; None: the file's valid text is not stored yet
    versions: int
    enabled: bool
    registered: bool  # the text shown is a stored version
    issues: tuple[SpecIssue, ...] = ()  # why the file as it is now does not validate


def exists(settings: Settings, store: Store, name: str) -> bool:
    info = store.pipeline(name)
    return file_of(settings, name) is not None or (info is not None and info.deleted_at is None)


def unknown(settings: Settings, store: Store, name: str) -> NotFoundError:
    known = [row.name for row, _ in listing(settings, store)]
    close = difflib.get_close_matches(name, known, n=1)
    return NotFoundError(
        f'unknown pipeline "{name}"',
        hint=f'did you mean "{close[0]}"?' if close else "GET /api/pipelines lists them",
    )


def definition(settings: Settings, store: Store, name: str, version: int | None = None) -> Definition:
    """NAME's file as it is now (valid or not), or its stored VERSION; nothing is written."""
    info = store.pipeline(name)
    live = info is not None and info.deleted_at is None
    enabled = info.enabled if info else True
    count = len(store.versions(name)) if info else 0
    path = file_of(settings, name)
    if version is not None or path is None:
        if not live and path is None:
            raise unknown(settings, store, name)
        stored = store.version(name, version)
        if stored is None:
            known = ", ".join(str(v.version) for v in store.versions(name)) or "none"
            raise NotFoundError(f"pipeline {name} has no version {version} (registered: {known})")
        at = display_path(path, settings.root) if path else None
        compiled = PipelineSpec.from_dict(json.loads(stored.compiled))
        return Definition(name, at, stored.text, compiled, stored.version, count, enabled, True)
    shown = display_path(path, settings.root)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        found = peek(path, shown, store)
    except SpecError as e:
        spec, number = _stored_spec(store, name)
        return Definition(name, shown, text, spec, number, count, enabled, False, tuple(e.issues))
    return Definition(name, shown, text, found.spec, found.version, count, enabled, found.version is not None)
