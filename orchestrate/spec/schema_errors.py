"""Validation against schema.json, with jsonschema's findings reworded for people.

jsonschema reports ``'stop' is not one of ['halt', 'continue', 'rollback']`` at a
deque of path parts; a user needs ``stages[3].on_failure: "stop" is not one of halt,
continue, rollback`` at a line and column, and a hint when a typo is likely. Every
error is translated (all of them are reported, not just the first); a validator
keyword without a rewording here keeps jsonschema's own text.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from orchestrate.domain.errors import SpecIssue
from orchestrate.spec.durations import DURATION_PATTERN, duration_error
from orchestrate.spec.marks import Document, FieldPath

SCHEMA_PATH = Path(__file__).with_name("schema.json")

_EXPECTED = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


@functools.cache
def schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = json.load(fh)
    return loaded


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    defs = schema()["$defs"]
    return Draft202012Validator({**_inline(schema(), defs), "$defs": defs})


# Following a $ref costs jsonschema a registry lookup on every visit: inlining the
# non-recursive ones halves validation time on a large file. The published file
# keeps its $refs for editors; the recursive condition (when) must keep them.
_RECURSIVE = {"when", "whenBody"}
_ANNOTATIONS = {"title", "description"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _inline(value, defs) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] not in _RECURSIVE:
        target = _inline(defs[ref[8:]], defs)
        rest = {key: value for key, value in out.items() if key != "$ref"}
        if not (set(rest) - _ANNOTATIONS) & set(target):  # same meaning only without clashing keywords
            return {**target, **rest}
    return out


def schema_issues(doc: Document) -> list[SpecIssue]:
    """Every schema violation in ``doc.data``, reworded and located."""
    seen: set[tuple[Any, ...]] = set()
    out: list[SpecIssue] = []
    for error in _validator().iter_errors(doc.data):
        for issue in _translate(error, doc):
            key = (issue.line, issue.column, issue.path, issue.message)
            if key not in seen:
                seen.add(key)
                out.append(issue)
    return out


def describe(value: Any) -> str:
    """``a string ("lint")``, ``an integer (5)``, ``a list``: what a value is, briefly."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({json.dumps(shown)})"
    return "a mapping" if isinstance(value, dict) else "a list"


def quoted(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else json.dumps(value, default=str)


def close_match(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    match = close_match(word, choices)
    return f'did you mean "{match}"?' if match else None


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _translate(error: Any, doc: Document) -> Iterator[SpecIssue]:
    path: FieldPath = tuple(error.absolute_path)
    kind = error.validator
    sch = error.schema if isinstance(error.schema, dict) else {}
    inst = error.instance

    if kind == "additionalProperties" and isinstance(inst, dict):
        known = sch.get("properties", {})
        allowed = [k for k in known if not k.startswith("$")]  # $schema is for editors, not worth a hint
        for key in inst:
            if key not in known:
                hint = did_you_mean(key, allowed) or (
                    f"allowed here: {', '.join(allowed)}" if allowed else None
                )
                yield doc.issue((*path, key), f'unknown key "{key}"', hint, key=True)
    elif kind == "required" and isinstance(inst, dict):
        for key in error.validator_value:
            if key not in inst:
                hint = "a pipeline needs at least one stage" if key == "stages" and not path else None
                yield doc.issue(path, f'missing required key "{key}"', hint)
    elif kind == "type":
        yield doc.issue(path, f"expected {_expected(error.validator_value, sch)}, got {describe(inst)}")
    elif kind == "enum":
        options = [str(o) for o in error.validator_value]
        hint = did_you_mean(inst, options) if isinstance(inst, str) else None
        yield doc.issue(path, f"{quoted(inst)} is not one of {', '.join(options)}", hint)
    elif kind == "pattern" and "propertyNames" in error.relative_schema_path:
        what = _KEY_KINDS.get(str(path[-1]) if path else "", "key")
        message, hint = _bad_name(inst, error.validator_value, what=what)
        yield doc.issue((*path, inst), message, hint, key=True)
    elif kind == "pattern":
        message, hint = _bad_name(inst, error.validator_value, what=_name_kind(path))
        yield doc.issue(path, message, hint)
    elif kind in ("minimum", "exclusiveMinimum"):
        if sch.get("pattern") == DURATION_PATTERN:
            yield doc.issue(path, duration_error(inst))
        else:
            yield doc.issue(path, f"must be {error.validator_value} or more, got {inst}")
    elif kind == "minItems":
        if path == ("stages",):
            yield doc.issue(path, "no stages", "a pipeline needs at least one stage")
        else:
            yield doc.issue(path, "must not be empty")
    elif kind == "minLength":
        yield doc.issue(path, "must not be empty")
    elif kind in ("oneOf", "anyOf"):
        yield from _alternatives(error, doc, path)
    else:
        yield doc.issue(path, error.message)


def _expected(types: str | list[str], sch: dict[str, Any]) -> str:
    if sch.get("pattern") == DURATION_PATTERN:
        return "a duration (e.g. 30s, 10m, 1.5h)"
    if isinstance(types, str):
        return _EXPECTED.get(types, types)
    if set(types) == {"string", "array"} and sch.get("items") == {"type": "string"}:
        return "a string or a list of strings"
    return _join([_EXPECTED.get(t, t).replace("true or false", "a boolean") for t in types])


_KEY_KINDS = {
    "variables": "variable name",
    "env": "environment variable name",
    "matrix": "matrix key",
    "experiments": "experiment name",
}


def _name_kind(path: FieldPath) -> str:
    if path == ("name",) or (path and path[-1] == "uses"):
        return "pipeline name"
    if path and path[-1] == "name":
        return "stage name" if path[0] == "stages" and len(path) == 3 else "name"
    return "value"


_FORMS = {
    r"^[a-z0-9][a-z0-9._-]*$": 'use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit',
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$": 'use letters, digits, ".", "_" and "-", starting with a letter or digit',
    r"^[A-Za-z_][A-Za-z0-9_]*$": 'use letters, digits and "_", not starting with a digit',
}


def _bad_name(value: Any, pattern: str, *, what: str) -> tuple[str, str | None]:
    """The message for a string failing ``pattern``, by what the pattern stands for."""
    shown = quoted(value)
    if pattern == DURATION_PATTERN:
        return duration_error(value), None
    if pattern in _FORMS:
        hint = None
        if what == "pipeline name":
            slug = re.sub(r"[^a-z0-9._-]+", "-", str(value).lower()).strip("-._")
            hint = f'try "{slug}"' if slug else None
        return f"{shown} is not a valid {what}: {_FORMS[pattern]}", hint
    if pattern.endswith(":[A-Za-z_][A-Za-z0-9_]*$"):
        return f"{shown} is not a Python callable", "write it as package.module:function"
    if "hourly" in pattern:
        return (
            f"{shown} is not a cron expression",
            'use 5 fields (minute hour day-of-month month day-of-week), e.g. "0 */6 * * *", or @daily',
        )
    return f"{shown} does not match {pattern}", None


def _alternatives(error: Any, doc: Document, path: FieldPath) -> Iterator[SpecIssue]:
    """oneOf/anyOf: say which choice was meant instead of listing every branch's failure."""
    context = list(error.context or ())
    if context and all(e.validator == "required" for e in context):
        keys = [k for e in context for k in e.validator_value]
        yield doc.issue(path, f"needs one of {_join([quoted(k) for k in keys])}")
        return
    if not context:  # valid under more than one branch of a oneOf
        keys = [k for b in error.validator_value for k in b.get("required", ())]
        if keys:
            yield doc.issue(path, f"give only one of {_join([quoted(k) for k in keys])}")
            return
        yield doc.issue(path, error.message)
        return
    from jsonschema.exceptions import best_match

    yield from _translate(best_match(context), doc)
