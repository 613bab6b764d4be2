"""Finding, loading and checking pipeline definitions.

The compiled model is cached in the store by the definition's digest, so the
run path of an unchanged file skips YAML schema validation (and its imports).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrate.domain.errors import FeatureNotAvailable, NotFoundError, UsageError
from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    from orchestrate.settings import Settings
    from orchestrate.store import Store


def looks_like_path(ref: str) -> bool:
    return "/" in ref or ref.endswith((".yaml", ".yml"))


def definition_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def find_definition(settings: Settings, ref: str) -> Path:
    """A pipeline's file from its name (pipelines.d/NAME.yaml) or a path to a YAML file."""
    if looks_like_path(ref):
        path = Path(ref)
        if not path.is_file():
            raise NotFoundError(f"{ref}: no such file", hint="check the path, or give a pipeline name")
        return path
    for suffix in (".yaml", ".yml"):
        candidate = settings.pipelines_dir / f"{ref}{suffix}"
        if candidate.is_file():
            return candidate
    # A file may hold a pipeline whose name differs from the file name.
    from orchestrate.spec.loader import load_pipeline

    names: dict[str, Path] = {}
    for path in definition_files(settings.pipelines_dir):
        try:
            names[load_pipeline(path).name] = path
        except Exception:  # an invalid file elsewhere must not hide a valid one
            continue
    if ref in names:
        return names[ref]
    close = difflib.get_close_matches(ref, names, n=1)
    hint = (
        f'did you mean "{close[0]}"?'
        if close
        else "orchestrate pipeline validate pipelines.d/*.yaml lists what is there"
    )
    raise NotFoundError(f'unknown pipeline "{ref}" (no such file in {settings.pipelines_dir})', hint=hint)


# A cheap guess at the pipeline's name, to find its cached compiled form without parsing YAML.
_NAME_LINE = re.compile(r"""^name:[ \t]*["']?([a-z0-9][a-z0-9._-]*)["']?[ \t]*(?:#.*)?$""", re.MULTILINE)


def load_for_reading(ref: str, get_settings: Callable[[], Settings]) -> PipelineSpec:
    """A definition for a read-only command (graph, dry run): validated, nothing stored.

    A file path needs no workspace; a name is looked up in the workspace's pipelines.d/.
    """
    from orchestrate.spec.loader import load_pipeline

    if looks_like_path(ref):
        if not Path(ref).is_file():
            raise NotFoundError(f"{ref}: no such file", hint="check the path, or give a pipeline name")
        return load_pipeline(ref, display_path=ref)
    settings = get_settings()
    path = find_definition(settings, ref)
    return load_pipeline(path, display_path=display_path(path, settings.root))


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def load_cached(path: Path, shown: str, store: Store) -> tuple[PipelineSpec, int]:
    """The validated definition and its version number, registering a new version if the text is new."""
    text = path.read_text(encoding="utf-8")
    digest = digest_of(text)
    named = _NAME_LINE.search(text)
    hit = store.compiled_definition(named.group(1) if named else path.stem, digest)
    if hit is not None:
        version, compiled = hit
        spec = PipelineSpec.from_dict(json.loads(compiled))
        return (spec if spec.path == shown else dataclasses.replace(spec, path=shown)), version
    from orchestrate.spec.loader import load_pipeline_text

    spec = load_pipeline_text(text, shown)
    version = store.register_version(spec.name, digest, shown, text, json.dumps(spec.to_dict()))
    return spec, version


def check_uses(settings: Settings, spec: PipelineSpec) -> None:
    """``uses:`` must name pipelines of this workspace, and never lead back to the pipeline itself."""
    from orchestrate.spec.loader import load_pipeline

    def children(of: PipelineSpec) -> list[tuple[str, str]]:
        return [(s.name, s.uses) for s in of.stages if s.uses is not None]

    def walk(current: PipelineSpec, trail: list[str]) -> None:
        for stage, child in children(current):
            if child in trail:
                cycle = " → ".join([*trail[trail.index(child) :], child])
                raise UsageError(f"{spec.path}: stage {stage} of {current.name}: pipeline cycle: {cycle}")
            try:
                path = find_definition(settings, child)
            except NotFoundError:
                raise NotFoundError(
                    f"{spec.path}: stage {stage}: uses unknown pipeline {child!r}",
                    hint="orchestrate pipeline list shows the pipelines of this workspace",
                ) from None
            walk(load_pipeline(path), [*trail, child])

    if children(spec):
        walk(spec, [spec.name])


def check_runnable(spec: PipelineSpec) -> None:
    """Refuse, in one line, a valid definition that uses what this version cannot run yet."""
    problems: list[str] = []
    for s in spec.stages:
        if s.rollback and s.rollback.get("agent"):  # rollback actions are run: commands for now
            problems.append(f"stage {s.name}: agent rollback actions")
    for group, items in (spec.handlers or {}).items():
        for item in items or ():
            if "run" not in item:
                problems.append(f"handlers.{group}: {item.get('name', '')} (only run: handlers)")
    if problems:
        listed = "; ".join(dict.fromkeys(problems))
        raise FeatureNotAvailable(
            f"{spec.path}: cannot run yet, this version does not support: {listed}",
            hint="`orchestrate pipeline validate` accepts the file; remove those keys to run it now",
        )
