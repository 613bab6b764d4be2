r"""``when.expr``: a small, safe expression language over a run's context (DESIGN §2).

User text never reaches Python (no ``eval``, ``compile`` or ``ast``): a regex tokenizer and
a recursive-descent parser build an AST of frozen dataclasses, which ``evaluate`` walks.
An expression can only read names, compare, combine booleans and call five whitelisted
pure functions. ``parse`` raises nothing but ``ExprError``. Grammar, loosest first::

    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison          # as in Python: not (a == b)
    comparison := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") operand]
    operand    := literal | name | function "(" [or ("," or)*] ")" | "(" or ")"
    literal    := 'text' | "text" | 12 | -1.5 | true | false | null
    name       := environment | variables.environment | stages.build.outputs.version | branch
    function   := startswith | endswith | contains | matches | len

Strings escape only ``\\``, ``\"`` and ``\'``; comparisons do not chain (``a < b < c``: use
``and``); keywords are lowercase; at most 2,000 characters and 50 levels of nesting.

Values are null, booleans, numbers (``Decimal``), strings and lists. Evaluation is total,
so a condition on run-time data never crashes a run: an unknown name is null; ``==`` and
``!=`` compare numerically when both sides look numeric (``"10" == 10.0``), else as text
(``true == "true"``), null equals only null, lists compare element-wise; ``<`` ``<=`` ``>``
``>=`` compare the same way but are false when a side is null or a list; ``a in b`` is
membership in a list, a substring test on a scalar, false on null. ``and``/``or``/``not``
short-circuit and give booleans; false are null, false, 0, "", "0", "false" (any case) and
[] (run variables are strings, so "false" must be false). ``startswith``/``endswith`` test
text (false given null or a list); ``contains(a, b)`` is ``b in a``; ``matches(a, glob)``
is case-sensitive ``fnmatch`` (``*`` crosses ``/``, unlike ``when.branch``); ``len`` counts
list items or characters, 0 for null.

Exceptions::

    ValueError
    └── ExprError     text that is not an expression, with its 1-based column
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

MAX_LENGTH = 2_000
MAX_DEPTH = 50

Value: TypeAlias = "bool | Decimal | str | tuple[Value, ...] | None"


class ExprError(ValueError):
    """An invalid expression; ``position`` is the 1-based column the message points at."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)  # both in args, so the error pickles
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} at column {self.position}"


# ── AST ─────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True, slots=True)
class Literal:
    value: Value


@dataclass(frozen=True, slots=True)
class Name:
    path: str  # dotted, as written: "stages.build.outputs.version"


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and", "or": n-ary, so a long chain stays one level deep; "not": one operand
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # == != < <= > >= in "not in"
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Expr, ...]


Expr: TypeAlias = Literal | Name | Logic | Compare | Call

# ── tokens ──────────────────────────────────────────────────────────────────────────
# Tried in order at each position. Stage names may hold "-" and start with a digit after
# a dot (stages.1st-build.outputs.x); there is no subtraction, so "-" in a name is safe.
# A number glued to letters or a second dot ("1.2.3", "3rd") is caught by `junk`; "-" only
# starts a negative number.
_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      | (?P<number>-?[0-9]+(?:\.[0-9]+)?)(?P<junk>[A-Za-z0-9_.]+)?
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*)
      | (?P<op>==|!=|<=|>=|[<>(),])
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""",
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})
_FUNCTIONS = {"startswith": 2, "endswith": 2, "contains": 2, "matches": 2, "len": 1}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_NUMERIC_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?\Z")
_ESCAPES = " (only \\\\, \\\" and \\' are escapes)"
_HINTS = {"=": "use == to compare", "!": "use not, or != to compare", "&": "use and", "|": "use or"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number name keyword op string end
    text: str
    column: int
    value: Value = None

    def describe(self) -> str:
        shown = _shown(self.text)[1:-1] if self.kind == "string" else _shown(self.text)
        return {"end": "end of expression", "op": shown}.get(self.kind, f"{self.kind} {shown}")


def _shown(text: str) -> str:
    text = text if len(text) <= 30 else text[:29] + "…"
    return '"' + (text if text.isprintable() else repr(text)[1:-1]) + '"'


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            c = text[i]
            if c in "'\"":
                raise ExprError("unterminated string", i + 1)
            hint = f" ({_HINTS[c]})" if c in _HINTS else ""
            raise ExprError(f"unexpected character {_shown(c)}{hint}", i + 1)
        kind, word = m.lastgroup or "", m.group()
        if kind == "junk":
            raise ExprError(f"invalid number {_shown(m.group())} (quote versions and ids)", i + 1)
        if kind == "number":
            tokens.append(_Token(kind, word, i + 1, Decimal(word)))
        elif kind == "string":
            body = word[1:-1]
            # Escapes pair up left to right, so "\\\\ " is a backslash and a space, not a bad "\\ ".
            if bad := next((e for e in _ESCAPE.finditer(body) if e.group(1) not in "\\\"'"), None):
                raise ExprError(f"unknown escape {_shown(bad.group())}{_ESCAPES}", i + 2 + bad.start())
            tokens.append(_Token(kind, word, i + 1, _ESCAPE.sub(r"\1", body)))
        elif kind != "space":
            tokens.append(_Token("keyword" if word in _KEYWORDS else kind, word, i + 1))
        i = m.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


# ── parser ──────────────────────────────────────────────────────────────────────────
def parse(text: str) -> Expr:
    """The AST of ``text``; ExprError (and nothing else) when it is not an expression."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH:,} characters", MAX_LENGTH + 1)
    if not text.strip():
        raise ExprError("empty expression", 1)
    parser = _Parser(_tokenize(text))
    tree = parser.or_()
    if parser.peek().kind != "end":
        raise _unexpected(parser.peek())
    return tree


class _Parser:
    # Keyword and operator tokens are told apart by text alone: a name is never a keyword,
    # and a string token's text keeps its quotes.
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.i, self.depth = tokens, 0, 0

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        self.i += 1
        return self.tokens[min(self.i - 1, len(self.tokens) - 1)]

    def enter(self, token: _Token) -> None:
        # Bounded here rather than by Python's recursion limit: deep input is an ExprError.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", token.column)

    def or_(self) -> Expr:
        return self.chain("or", lambda: self.chain("and", self.not_))

    def chain(self, keyword: str, operand: Callable[[], Expr]) -> Expr:
        items = [operand()]
        while self.peek().text == keyword:
            self.take()
            items.append(operand())
        return items[0] if len(items) == 1 else Logic(keyword, tuple(items))

    def not_(self) -> Expr:
        if self.peek().text != "not":
            return self.comparison()
        self.enter(self.take())
        operand = self.not_()
        self.depth -= 1
        return Logic("not", (operand,))

    def comparison(self) -> Expr:
        left = self.operand()
        if (op := self.operator()) is None:
            return left
        right = self.operand()
        extra = self.peek()
        if self.operator() is not None:
            raise ExprError("comparisons do not chain: join them with and", extra.column)
        return Compare(op, left, right)

    def operator(self) -> str | None:
        if self.peek().text in _COMPARISONS:
            return self.take().text
        if self.peek().text == "not" and self.peek(1).text == "in":
            self.i += 2
            return "not in"
        return None

    def operand(self) -> Expr:
        token = self.take()
        if token.kind in ("string", "number"):
            return Literal(token.value)
        if token.text in ("true", "false", "null"):
            return Literal({"true": True, "false": False}.get(token.text))
        if token.kind == "name":
            return self.call(token) if self.peek().text == "(" else Name(token.text)
        if token.text != "(":
            raise _unexpected(token)
        self.enter(token)
        inner = self.or_()
        self.close(token)
        return inner

    def call(self, name: _Token) -> Expr:
        arity = _FUNCTIONS.get(name.text)
        if arity is None:
            known = ", ".join(sorted(_FUNCTIONS))
            raise ExprError(f"unknown function {_shown(name.text)} (functions: {known})", name.column)
        opening = self.take()
        self.enter(opening)
        args = [] if self.peek().text == ")" else [self.or_()]
        while args and self.peek().text == ",":
            self.take()
            args.append(self.or_())
        self.close(opening)
        if len(args) != arity:
            plural = "s" if arity > 1 else ""
            raise ExprError(f"{name.text}() takes {arity} argument{plural} ({len(args)} given)", name.column)
        return Call(name.text, tuple(args))

    def close(self, opening: _Token) -> None:
        token = self.take()
        if token.text != ")":
            where = f'expected ")" for the "(" at column {opening.column}'
            raise ExprError(f"{where}, found {token.describe()}", token.column)
        self.depth -= 1


def _unexpected(token: _Token) -> ExprError:
    return ExprError(f"unexpected {token.describe()}", token.column)


def references(expr: Expr) -> set[str]:
    """Every name ``expr`` reads, e.g. {"environment", "stages.build.outputs.version"}."""
    match expr:
        case Name(path=path):
            return {path}
        case Compare(left=left, right=right):
            return references(left) | references(right)
        case Logic(operands=items) | Call(args=items):
            return set().union(*(references(e) for e in items))
    return set()


# ── evaluation ──────────────────────────────────────────────────────────────────────
def evaluate(expr: Expr, names: Callable[[str], Any]) -> Value:
    """The value of ``expr``; ``names(path)`` gives a name's value, None when unknown."""
    match expr:
        case Literal(value=value):
            return value
        case Name(path=path):
            return value_of(names(path))
        case Logic(op="not", operands=(operand,)):
            return not truthy(evaluate(operand, names))
        case Logic(op=op, operands=items):
            quantifier = all if op == "and" else any  # both short-circuit
            return quantifier(truthy(evaluate(e, names)) for e in items)
        case Compare(op=op, left=left, right=right):
            return _compare(op, evaluate(left, names), evaluate(right, names))
        case Call(function=function, args=args):
            return _call(function, [evaluate(a, names) for a in args])
    raise TypeError(f"not an expression: {expr!r}")


def value_of(raw: Any) -> Value:
    """A host value (from ``names``) as an expression value; lists are kept one level deep."""
    if isinstance(raw, Mapping):  # `"x" in variables` asks about keys, as in Python
        raw = list(raw)
    if isinstance(raw, list | tuple | set | frozenset):
        return tuple(_scalar(x) for x in raw)
    return _scalar(raw)


def _scalar(raw: Any) -> bool | Decimal | str | None:
    if raw is None or isinstance(raw, bool | str):
        return raw
    if isinstance(raw, int | float | Decimal):
        # repr is the shortest text that round-trips: 0.1 stays 0.1, not 0.1000000000000000055…
        number = Decimal(repr(raw) if isinstance(raw, float) else raw)
        return number if number.is_finite() else str(raw)  # nan and inf compare as text
    return str(raw)  # anything else (a nested list, an object) is compared by its text


def text(value: Any) -> str:
    """A scalar as text, the way YAML and the shell spell it: true, not Python's True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _number(value: Value) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _NUMERIC_TEXT.match(value):
        return Decimal(value)
    return None


def truthy(value: Any) -> bool:
    """Whether a value counts as true (see the module docstring)."""
    value = value_of(value)
    if isinstance(value, str):
        number = _number(value)
        return number != 0 if number is not None else value.lower() not in ("", "false")
    return bool(value)  # null, a boolean, a number (0 is false) or a list


def _equal(a: Value, b: Value) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(map(_equal, a, b))
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return text(a) == text(b)


def _member(item: Value, container: Value) -> bool:
    if isinstance(container, tuple):
        return any(_equal(item, x) for x in container)
    if container is None or item is None or isinstance(item, tuple):
        return False
    return text(item) in text(container)


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# fnmatchcase: case-sensitive on every OS, and since Python 3.9 it cannot backtrack exponentially.
_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {"startswith": str.startswith, "endswith": str.endswith}
_TEXT_TESTS["matches"] = fnmatch.fnmatchcase


def _compare(op: str, a: Value, b: Value) -> bool:
    if op in ("==", "!="):
        return _equal(a, b) == (op == "==")
    if op in ("in", "not in"):
        return _member(a, b) == (op == "in")
    if a is None or b is None or isinstance(a, tuple) or isinstance(b, tuple):
        return False
    na, nb = _number(a), _number(b)
    return _ORDER[op](na, nb) if na is not None and nb is not None else _ORDER[op](text(a), text(b))


def _call(function: str, args: list[Value]) -> Value:
    if function == "len":
        (x,) = args
        return Decimal(len(x) if isinstance(x, tuple | str) else 0 if x is None else len(text(x)))
    a, b = args
    if function == "contains":
        return _member(b, a)
    if a is None or b is None or isinstance(a, tuple) or isinstance(b, tuple):
        return False
    return _TEXT_TESTS[function](text(a), text(b))
