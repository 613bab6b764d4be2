"""Stage conditions: ``when:`` decides whether a stage runs, and says why not (DESIGN §2).

Keys of one mapping are ANDed, in the order written:

- ``branch``: globs (one or a list), one of which the event's branch must match. ``*``,
  ``?`` and ``[...]`` stay within a ``/`` segment, ``**`` crosses them, ``**/`` may match
  none: ``release/*`` matches ``release/1.2``, not ``release/1.2/hotfix``; ``feature/**``
  matches both. ``!glob`` excludes (the last glob that matches decides, as in .gitignore).
  A run without a branch matches none.
- ``paths``: gitignore-style globs (pathspec's ``GitIgnoreSpec``), true when a changed file
  matches: ``README.md`` at any depth (``/README.md`` at the root only), ``docs/*`` covers
  ``docs/a/b.md``, ``!`` excludes. With changed files **unknown** (``None``: a manual run)
  ``paths`` holds, and the reason says ``when.paths: no changed files known (manual run):
  not filtered``: a path filter narrows event-driven runs, it must not silently skip the
  stages of a run started by hand (GitHub Actions, too, ignores path filters on manual
  dispatch). A known empty list matches nothing.
- ``labels``: any listed label is on the event. ``variables``: ``{name: value}``, each
  equal as text (YAML ``true`` is ``"true"``); an unset variable is not equal.
- ``expr``: an ``orchestrate.spec.expr`` expression over the variables (``environment``,
  ``variables.environment``), ``branch``, ``labels``, ``changed_files`` and
  ``stages.NAME.outputs.KEY``; those context names win over variables of the same name.
- ``or``: a mapping or a list of mappings, each an alternative to the AND of its sibling
  keys (with no siblings, the alternatives alone decide). ``not`` negates a mapping;
  ``all``/``any`` take lists of mappings (``all: []`` holds, ``any: []`` does not).

An empty mapping holds. A false decision names the first failing key path and why
(``when.branch: 'feature/x' does not match 'main'``). A malformed condition, which
``problems`` reports at load time, never runs the stage: its reason says ``invalid``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from orchestrate.spec import expr as expression

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

MAX_REASON = 160
MAX_NESTING = 50
FieldPath = tuple[str | int, ...]  # as in orchestrate.spec.marks, which imports yaml
_Known = Callable[[str], bool] | None
_KEYS = ("branch", "paths", "labels", "variables", "expr", "or", "not", "all", "any")
_UNKNOWN_FILES = "no changed files known (manual run): not filtered"


@dataclass(frozen=True)
class WhenContext:
    branch: str | None = None  # the triggering event's branch; None for a manual run without one
    changed_files: tuple[str, ...] | None = None  # None: unknown (manual run); (): known empty
    labels: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # stage -> key -> value


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str  # one line: "when: conditions hold", or the first failing key path and why


def evaluate(when: Mapping[str, Any] | None, ctx: WhenContext) -> Decision:
    """Whether a stage with condition ``when`` runs in ``ctx``, and why."""
    try:
        out = _Evaluator(ctx).mapping({} if when is None else when, "when", 0)
    except _Invalid as invalid:
        return Decision(False, _clip(f"{_clip(invalid.where, 80)}: invalid: {invalid.message}"))
    if out.ok:
        return Decision(True, "when: conditions hold" + (f"; {out.waived}" if out.waived else ""))
    more = f" (and {out.others} other alternative{'s' if out.others > 1 else ''})" if out.others else ""
    return Decision(False, _clip(f"{_clip(out.where, 80)}: {out.why}", MAX_REASON - len(more)) + more)


def problems(when: Any, known: _Known = None) -> list[tuple[FieldPath, str]]:
    """What makes ``when`` invalid, as (path below ``when``, message), for load-time checks;
    with ``known``, also any name an ``expr`` reads that is unknown (null: silently false)."""
    found: list[tuple[FieldPath, str]] = []
    _walk(when, (), found, known, 0)
    return found


def _walk(node: Any, path: FieldPath, found: list[tuple[FieldPath, str]], known: _Known, depth: int) -> None:
    if not isinstance(node, Mapping) or depth > MAX_NESTING:
        problem = "must be a mapping of conditions" if depth <= MAX_NESTING else "nested too deeply"
        found.append((path, problem))
        return
    for key, value in node.items():
        at: FieldPath = (*path, key)
        if key == "not" or (key == "or" and isinstance(value, Mapping)):
            _walk(value, at, found, known, depth + 1)
        elif key in ("or", "all", "any"):
            if not isinstance(value, list) or (not value and key != "all"):
                found.append((at, "must be a non-empty list of mappings"))
            for i, item in enumerate(value if isinstance(value, list) else ()):
                _walk(item, (*at, i), found, known, depth + 1)
        elif key not in _CHECKS:
            found.append((at, f"unknown condition (use one of {', '.join(_KEYS)})"))
        else:
            try:  # each check validates its value as it runs
                _CHECKS[key](WhenContext(branch="", changed_files=()), value, "")
            except _Invalid as invalid:
                found.append(((*at, invalid.where[1:]) if invalid.where else at, invalid.message))
                continue
            if value == []:  # valid as a type, but a stage that can never run is a mistake
                found.append((at, "an empty list never matches"))
            if key == "expr" and known is not None:
                names = sorted(expression.references(_parse(value)))
                found += [(at, f"unknown name {n!r}") for n in names if not known(n)]


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    where: str  # the key path that decided, e.g. "when.or.labels"
    why: str  # what was found, true or false: "'feature/x' does not match 'main'"
    others: int = 0  # further alternatives that failed too
    waived: str | None = None  # set when `paths` held only because changed files are unknown


@dataclass(eq=False)  # an exception compares by identity
class _Invalid(Exception):
    where: str
    message: str


@dataclass(frozen=True)
class _Evaluator:
    ctx: WhenContext

    def mapping(self, node: Any, where: str, depth: int) -> _Outcome:
        if not isinstance(node, Mapping) or depth > MAX_NESTING:
            problem = "must be a mapping of conditions" if depth <= MAX_NESTING else "nested too deeply"
            raise _Invalid(where, problem)
        keys = [k for k in node if k != "or"]
        held: list[_Outcome] = []
        for key in keys:
            out = self.key(key, node[key], f"{where}.{key}", depth)
            if not out.ok:
                break
            held.append(out)
        else:
            out = _conjunction(held, where)
            if keys or "or" not in node:
                return out  # the siblings hold: the alternatives need not be looked at
        failed = [out] if keys else []
        for alt_where, alt in _alternatives(node.get("or", []), f"{where}.or"):
            alt_out = self.mapping(alt, alt_where, depth + 1)
            if alt_out.ok:
                return alt_out
            failed.append(alt_out)
        return _first(failed, f"{where}.or")

    def key(self, key: str, value: Any, where: str, depth: int) -> _Outcome:
        if key == "not":
            inner = self.mapping(value, where, depth + 1)
            relative = inner.where[len(where) :].lstrip(".")
            detail = f"{relative}: {inner.why}" if relative else inner.why
            return _Outcome(not inner.ok, where, f"{'holds' if inner.ok else 'does not hold'} ({detail})")
        if key in ("all", "any"):
            if not isinstance(value, list):
                raise _Invalid(where, "must be a list of mappings")
            outs: list[_Outcome] = []
            for i, item in enumerate(value):
                out = self.mapping(item, f"{where}[{i}]", depth + 1)
                if out.ok != (key == "all"):
                    return out  # the first failing `all` item, or the first holding `any` item
                outs.append(out)
            return _conjunction(outs, where) if key == "all" else _first(outs, where)
        if key not in _CHECKS:
            raise _Invalid(where, f"unknown condition (use one of {', '.join(_KEYS)})")
        return _CHECKS[key](self.ctx, value, where)


def _alternatives(value: Any, where: str) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [(where, value)]
    if isinstance(value, list):
        return [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    raise _Invalid(where, "must be a mapping or a list of mappings")


def _conjunction(held: list[_Outcome], where: str) -> _Outcome:
    """Keys that all held: the one key itself when alone, so that `not` can say what held."""
    if len(held) == 1:
        return held[0]
    waived = next((o.waived for o in held if o.waived), None)
    shown = ", ".join(o.where[len(where) :].lstrip(".") for o in held)
    return _Outcome(True, where, f"{shown} all hold" if held else "no conditions", waived=waived)


def _first(failed: list[_Outcome], where: str) -> _Outcome:
    head = failed[0] if failed else _Outcome(False, where, "no alternatives")
    return _Outcome(False, head.where, head.why, max(len(failed) - 1, 0) + sum(o.others for o in failed))


# ── the checks ──────────────────────────────────────────────────────────────────────
def _branch(ctx: WhenContext, value: Any, where: str) -> _Outcome:
    globs = _strings(value, where)
    if ctx.branch is None:
        return _Outcome(False, where, f"no branch (manual run) to match {_quoted(globs)}")
    decisive = next((g for g in reversed(globs) if glob_match(g.removeprefix("!"), ctx.branch)), None)
    if decisive is None:
        return _Outcome(False, where, f"{_q(ctx.branch)} does not match {_quoted(globs)}")
    if decisive.startswith("!"):
        return _Outcome(False, where, f"{_q(ctx.branch)} is excluded by {_q(decisive)}")
    return _Outcome(True, where, f"{_q(ctx.branch)} matches {_q(decisive)}")


def _paths(ctx: WhenContext, value: Any, where: str) -> _Outcome:
    globs = _strings(value, where)
    spec, shown = _pathspec(tuple(globs)), _clip(", ".join(globs), 60)
    if isinstance(spec, str):
        raise _Invalid(where, spec)
    if ctx.changed_files is None:
        return _Outcome(True, where, _UNKNOWN_FILES, waived=f"{where}: {_UNKNOWN_FILES}")
    hit = next((f for f in ctx.changed_files if spec.match_file(f.removeprefix("./"))), None)
    if hit is not None:
        return _Outcome(True, where, f"{_shown(hit, 60)} matches {shown}")
    return _Outcome(False, where, f"no changed file matches {shown} (changed: {_listed(ctx.changed_files)})")


def _labels(ctx: WhenContext, value: Any, where: str) -> _Outcome:
    wanted = _strings(value, where)
    hit = next((label for label in wanted if label in ctx.labels), None)
    if hit is not None:
        return _Outcome(True, where, f"{_shown(hit, 60)} present")
    return _Outcome(False, where, f"none of [{_listed(wanted)}] present (labels: {_listed(ctx.labels)})")


def _variables(ctx: WhenContext, value: Any, where: str) -> _Outcome:
    if not isinstance(value, Mapping):
        raise _Invalid(where, "must be a mapping of variable names to values")
    held: list[_Outcome] = []
    for name, wanted in value.items():
        at = f"{where}.{name}"
        if wanted is None or isinstance(wanted, Mapping | list):
            raise _Invalid(at, "must be a string, number or boolean")
        expected, actual = expression.text(wanted), ctx.variables.get(name)
        if actual is None:
            return _Outcome(False, at, f"not set (expected {_q(expected)})")
        if (actual := expression.text(actual)) != expected:
            return _Outcome(False, at, f"{_q(actual)} is not {_q(expected)}")
        held.append(_Outcome(True, at, f"{_q(actual)} is {_q(expected)}"))
    return _conjunction(held, where)


def _expr(ctx: WhenContext, value: Any, where: str) -> _Outcome:
    if not isinstance(value, str):
        raise _Invalid(where, "must be an expression in a string")
    try:
        ok = expression.truthy(expression.evaluate(_parse(value), _names(ctx)))
    except expression.ExprError as e:
        raise _Invalid(where, str(e)) from None
    return _Outcome(ok, where, f"{'true' if ok else 'false'} ({_clip(' '.join(value.split()), 100)})")


_CHECKS: dict[str, Callable[[WhenContext, Any, str], _Outcome]] = {"branch": _branch, "paths": _paths}
_CHECKS.update(labels=_labels, variables=_variables, expr=_expr)


def _names(ctx: WhenContext) -> Callable[[str], Any]:
    fixed = {"branch": ctx.branch, "labels": ctx.labels, "changed_files": ctx.changed_files}

    def lookup(name: str) -> Any:
        head, _, rest = name.partition(".")
        if name in fixed or name == "variables":
            return fixed.get(name, ctx.variables)
        if head == "variables":
            return ctx.variables.get(rest)
        if head != "stages":
            return ctx.variables.get(name)
        if rest.endswith(".outputs"):
            return ctx.outputs.get(rest.removesuffix(".outputs"))
        stage, _, key = rest.rpartition(".outputs.")  # stage names may hold dots; output keys do not
        return ctx.outputs.get(stage, {}).get(key)

    return lookup


_parse = lru_cache(maxsize=256)(expression.parse)  # a stage's condition is read on every evaluation


@lru_cache(maxsize=256)
def _pathspec(globs: tuple[str, ...]) -> GitIgnoreSpec | str:
    """The compiled globs, or pathspec's complaint about them."""
    from pathspec import GitIgnoreSpec  # imported here, not at start-up: most runs never need it

    try:
        return GitIgnoreSpec.from_lines(globs)
    except ValueError as e:  # pathspec's pattern errors are ValueErrors
        return str(e)


def _strings(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise _Invalid(where, "must be a string or a list of strings")
    return items


def _clip(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(text: str, limit: int) -> str:
    """One line, whatever the text: control characters are escaped, long text clipped."""
    return _clip(text if text.isprintable() else text.encode("unicode_escape").decode("ascii"), limit)


def _q(text: str) -> str:
    return f"'{_shown(text, 60)}'"


def _quoted(items: Sequence[str]) -> str:
    return _clip(", ".join(_q(x) for x in items), 80)


def _listed(items: Sequence[str], shown: int = 4) -> str:
    more = f", … (+{len(items) - shown} more)" if len(items) > shown else ""
    return ", ".join(_shown(x, 40) for x in items[:shown]) + more if items else "none"


# ── globs ───────────────────────────────────────────────────────────────────────────
# A glob becomes a list of steps, walked as a set of positions (an NFA) rather than by a
# backtracking regex: `*a*a*a*b` against a long name costs len(glob) × len(name), never
# exponential time. Steps: ("=", test) takes one character; ("*", test) any run of them;
# "**/" is ("#", _): go on, or skip the next step ("/", _), which takes anything up to a "/".
_Pred = Callable[[str], bool]


def glob_match(glob: str, name: str) -> bool:
    """Whether all of ``name`` matches ``glob`` (the branch globs of the module docstring)."""
    steps = _glob_steps(glob)
    end = len(steps)

    def closure(states: set[int]) -> set[int]:
        for i in range(end):  # empty moves only go forward: one ascending pass finds them all
            if i in states and steps[i][0] in "*#":
                states |= {i + 1, i + 2} if steps[i][0] == "#" else {i + 1}
        return states

    states = closure({0})
    for ch in name:
        after: set[int] = set()
        for i in states - {end}:
            kind, test = steps[i]
            if kind == "/":
                after |= {i, i + 1} if ch == "/" else {i}
            elif test(ch):
                after.add(i if kind == "*" else i + 1)
        if not (states := closure(after)):
            return False
    return end in states


def _in_segment(ch: str) -> bool:
    return ch != "/"


_any: _Pred = bool  # true for every character (a non-empty string)


@lru_cache(maxsize=512)
def _glob_steps(glob: str) -> tuple[tuple[str, _Pred], ...]:
    steps: list[tuple[str, _Pred]] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            j = n - len(glob[i:].lstrip("*"))
            if j - i > 1 and glob[j : j + 1] == "/" and glob[i - 1 : i] in ("", "/"):
                steps += [("#", _any), ("/", _any)]
                i = j + 1
            else:
                steps.append(("*", _any if j - i > 1 else _in_segment))
                i = j
            continue
        negated = glob[i + 1 : i + 2] in ("!", "^")
        if c == "?":
            test: _Pred = _in_segment
        elif c == "[" and (end := glob.find("]", i + 2 + negated)) > 0:  # "[]]" holds a "]"
            test, i = _char_class(glob[i + 1 + negated : end], negated), end
        else:
            if c == "\\" and i + 1 < n:
                i += 1
            test = glob[i].__eq__
        steps.append(("=", test))
        i += 1
    return tuple(steps)


def _char_class(body: str, negated: bool) -> _Pred:
    ranges = [(lo or one, hi or one) for lo, hi, one in re.findall(r"(.)-(.)|(.)", body, re.DOTALL)]
    return lambda ch: ch != "/" and any(lo <= ch <= hi for lo, hi in ranges) != negated
