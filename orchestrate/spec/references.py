"""Checking ``${...}`` references at load time: an unknown one is an error, never "".

What may be referenced depends on where: ``${matrix.os}`` only in a stage with an
``os`` axis, ``${stages.X.outputs.K}`` only when X runs before this stage (is
upstream of it), so a run cannot reach a reference it is unable to resolve.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrate.spec.interpolate import references
from orchestrate.spec.marks import Document, FieldPath
from orchestrate.spec.schema_errors import close_match, did_you_mean

_FIELDS = {
    "run": ("id", "status", "failed"),
    "approval": ("feedback", "iteration"),
    "repair": ("round", "model", "exit_code", "log"),
}
BUILTINS = tuple(f"{head}.{tail}" for head, tails in _FIELDS.items() for tail in tails)


class Upstream:
    """Answers "does stage A run before stage B?" from the resolved ``needs``.

    A breadth-first walk per question, cached: cheaper than every stage's full
    ancestor set on a long chain, where most questions are about a near neighbour.
    """

    def __init__(self, needs: Mapping[str, tuple[str, ...]]) -> None:
        self.needs = needs
        self.cache: dict[tuple[str, str], bool] = {}

    def __call__(self, ancestor: str, stage: str) -> bool:
        key = (ancestor, stage)
        if key not in self.cache:
            self.cache[key] = self._search(ancestor, stage)
        return self.cache[key]

    def _search(self, ancestor: str, stage: str) -> bool:
        seen = {stage}
        queue = deque(self.needs.get(stage, ()))
        while queue:
            v = queue.popleft()
            if v == ancestor:
                return True
            if v not in seen:
                seen.add(v)
                queue.extend(self.needs.get(v, ()))
        return False


@dataclass
class Scope:
    """What a piece of text may refer to."""

    variables: set[str]
    stages: Collection[str]
    experiments: Collection[str]  # names of the pipeline's experiments: ${variant.NAME}
    upstream: Upstream | None = None  # None: order invalid, or any declared stage will do
    stage: str | None = None  # the stage the text belongs to (None for handlers)
    include_self: bool = False  # a rollback action may read its own stage's outputs
    matrix_keys: set[str] = field(default_factory=set)
    has_matrix: bool = False


def check_text(doc: Document, path: FieldPath, text: Any, scope: Scope) -> None:
    if not isinstance(text, str) or "${" not in text:
        return
    for ref in references(text):
        problem = _check(ref, scope)
        if problem:
            doc.add(path, *problem)


def stage_texts(stage: Mapping[str, Any]) -> Iterator[tuple[FieldPath, Any, bool]]:
    """(relative path, text, is a rollback action) of each interpolated field of a stage."""
    for key in ("run", "task"):
        if key in stage:
            yield (key,), stage[key], False
    for name, value in (stage.get("env") or {}).items():
        yield ("env", name), value, False
    for key in ("run", "task"):
        if key in (stage.get("rollback") or {}):
            yield ("rollback", key), stage["rollback"][key], True
    if "precheck" in stage:
        yield ("precheck", "run"), stage["precheck"]["run"], False


def matrix_keys(matrix: Mapping[str, Any] | None) -> set[str]:
    if not matrix:
        return set()
    keys = {k for k in matrix if k not in ("include", "exclude", "max_parallel", "fail_fast")}
    for extra in matrix.get("include") or ():
        keys.update(extra)
    return keys


def _check(ref: str, scope: Scope) -> tuple[str, str | None] | None:
    shown = f'"${{{ref}}}"'
    if not ref:
        return f"empty reference {shown}", "write $$ for a literal $"
    if ref in scope.variables:
        return None
    head, dot, rest = ref.partition(".")
    if not dot:
        match = close_match(ref, [*scope.variables, *BUILTINS])
        if match:
            hint = f'did you mean "${{{match}}}"?'
        elif ref.isupper():
            hint = f"for the shell's variable write ${ref} or $${{{ref}}}; or declare it under variables:"
        else:
            hint = f"declare it under variables:, or write $${{{ref}}} for a literal ${{{ref}}}"
        return f"unknown reference {shown}", hint
    if head in _FIELDS:
        if rest in _FIELDS[head]:
            return None
        return f"unknown reference {shown}", f"{head} has {' and '.join(_FIELDS[head])}"
    if head == "event":
        return None if rest else (f"{shown} needs a field", "e.g. ${event.ref}")
    if head == "stages":
        return _check_stage_output(ref, rest, shown, scope)
    if head == "matrix":
        if not scope.has_matrix:
            return f"{shown} is used but the stage has no matrix", None
        if rest not in scope.matrix_keys:
            hint = (
                did_you_mean(rest, scope.matrix_keys)
                or f"matrix keys: {', '.join(sorted(scope.matrix_keys))}"
            )
            return f'unknown matrix key "{rest}" in {shown}', hint
        return None
    if head == "variant":
        if not scope.experiments:
            return f"{shown} needs experiments: in the pipeline", None
        if not rest:
            return f"{shown} needs an experiment name", "e.g. ${variant.prompt-style}"
        return _check_variant(rest, shown, scope.experiments)
    if head == "secrets":
        return (
            f"{shown}: secrets are not references",
            f"secrets arrive as environment variables: write ${rest} in run",
        )
    match = close_match(ref, [*scope.variables, *BUILTINS])
    return f"unknown reference {shown}", f'did you mean "${{{match}}}"?' if match else None


VARIANT_FIELDS = ("prompt", "model", "skill")  # ${variant.NAME.FIELD}: that field of the chosen variant


def experiment_names(raw: Any) -> set[str]:
    """The experiment names of a (schema-valid) ``experiments:`` value, either spelling."""
    if not raw:
        return set()
    if isinstance(raw, Mapping):
        return {str(k) for k in raw}
    return {str(e["name"]) for e in raw if isinstance(e, Mapping) and "name" in e}


def _check_variant(rest: str, shown: str, experiments: Collection[str]) -> tuple[str, str | None] | None:
    """``${variant.NAME}`` (the chosen variant's name) or ``${variant.NAME.FIELD}`` (prompt, model, skill)."""
    if rest in experiments:
        return None
    name, dot, fieldname = rest.rpartition(".")
    if dot and name in experiments:
        if fieldname in VARIANT_FIELDS:
            return None
        return f'unknown variant field "{fieldname}" in {shown}', f"fields: {', '.join(VARIANT_FIELDS)}"
    hint = did_you_mean(rest, experiments) or f"experiments: {', '.join(sorted(experiments))}"
    return f'unknown experiment "{rest}" in {shown}', hint


def _check_stage_output(ref: str, rest: str, shown: str, scope: Scope) -> tuple[str, str | None] | None:
    name, sep, key = rest.partition(".outputs.")
    if not sep or not name or not key:
        return f"{shown} is not a stage output", "write ${stages.NAME.outputs.KEY}"
    if name not in scope.stages:
        return f'unknown stage "{name}" in {shown}', did_you_mean(name, scope.stages)
    if scope.upstream is None or scope.stage is None:
        return None
    if name == scope.stage:
        if scope.include_self:
            return None
        return (
            f"{shown}: a stage cannot read its own outputs",
            "outputs exist only once the stage has finished",
        )
    if not scope.upstream(name, scope.stage):
        return (
            f'{shown}: stage "{name}" is not upstream of "{scope.stage}"',
            f'add "{name}" to the depends_on of "{scope.stage}" so its outputs exist first',
        )
    return None
