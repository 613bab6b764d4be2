from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrate.spec.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    Call,
    Compare,
    ExprError,
    Literal,
    Logic,
    Name,
    evaluate,
    parse,
    references,
    truthy,
    value_of,
)

NAMES: dict[str, Any] = {
    "environment": "prod",
    "variables.environment": "prod",
    "count": "10",
    "ratio": 0.5,
    "flag": "false",
    "empty": "",
    "branch": "release/1.2",
    "labels": ("docs", "hotfix"),
    "changed_files": ("src/a.py", "docs/index.md"),
    "nothing": (),
    "stages.build-1.outputs.version": "1.2.3",
    "stages.build-1.outputs.size": "2048",
}


def run(text: str, names: dict[str, Any] | None = None) -> Any:
    return evaluate(parse(text), (NAMES if names is None else names).get)


EXPRESSIONS = [
    # literals
    ("'single'", "single"),
    ('"double"', "double"),
    (r'"a \"quoted\" \\ word"', 'a "quoted" \\ word'),
    (r"'it\'s'", "it's"),
    ("12", 12),
    ("-1.5", Decimal("-1.5")),
    ("true", True),
    ("false", False),
    ("null", None),
    # names
    ("environment", "prod"),
    ("variables.environment", "prod"),
    ("stages.build-1.outputs.version", "1.2.3"),
    ("labels", ("docs", "hotfix")),
    ("unknown", None),
    ("unknown.deeply.nested", None),
    # equality: numbers when both look numeric, else text
    ('environment == "prod"', True),
    ("environment == 'staging'", False),
    ('environment != "staging"', True),
    ("count == 10", True),
    ("count == 10.0", True),
    ('count == "10.00"', True),
    ("ratio == 0.5", True),
    ('true == "true"', True),
    ("flag == false", True),
    ('stages.build-1.outputs.version == "1.2.3"', True),
    ("labels == labels", True),
    ('labels == "docs"', False),
    ("unknown == null", True),
    ("unknown != null", False),
    ("environment == null", False),
    ("environment != null", True),
    # ordering
    ("count > 9", True),
    ("count < 9", False),
    ("count >= 10", True),
    ("count <= 10", True),
    ('count < "9"', False),  # both numeric: 10 < 9 is false (as text "10" < "9" would be true)
    ("stages.build-1.outputs.size > 1000", True),
    ('"apple" < "banana"', True),
    ('"1.10" > "1.9"', False),  # two decimals compare as numbers: 1.10 < 1.9
    ('stages.build-1.outputs.version > "1.10.0"', True),  # versions are text: "1.2.3" > "1.10.0"
    ("unknown < 1", False),
    ("unknown >= 1", False),
    ("labels > 1", False),
    # membership
    ('"docs" in labels', True),
    ('"ci" in labels', False),
    ('"ci" not in labels', True),
    ('"src/a.py" in changed_files', True),
    ('"rod" in environment', True),
    ('"x" in unknown', False),
    ('"x" not in unknown', True),
    ("null in labels", False),
    # logic
    ('environment == "prod" and "docs" in labels', True),
    ('environment == "dev" or "docs" in labels', True),
    ('environment == "dev" or "ci" in labels', False),
    ("not flag", True),
    ("not empty", True),
    ("not nothing", True),
    ("not labels", False),
    ("not unknown", True),
    ("not not environment", True),
    ("flag and unknown_is_never_read", False),
    # functions
    ('startswith(branch, "release/")', True),
    ('endswith(branch, ".2")', True),
    ('startswith(unknown, "")', False),
    ('contains(labels, "hotfix")', True),
    ('contains(branch, "1.")', True),
    ('contains(unknown, "x")', False),
    ('matches(branch, "release/*")', True),
    ('matches(branch, "Release/*")', False),
    ('matches(labels, "*")', False),
    ("len(labels)", 2),
    ("len(environment)", 4),
    ("len(unknown)", 0),
    ("len(nothing) == 0", True),
    ("len(count)", 2),
    ("len(labels) > 1 and len(changed_files) < 5", True),
    # whitespace and line breaks (a YAML block scalar)
    ('environment == "prod"\n  and\tcount > 1', True),
]


@pytest.mark.parametrize(("text", "expected"), EXPRESSIONS)
def test_expressions(text: str, expected: Any) -> None:
    assert run(text) == expected


def test_and_or_not_give_booleans() -> None:
    assert run("environment and count") is True
    assert run("environment or count") is True
    assert run("not environment") is False


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a or b and c", Logic("or", (Name("a"), Logic("and", (Name("b"), Name("c")))))),
        ("a and b or c", Logic("or", (Logic("and", (Name("a"), Name("b"))), Name("c")))),
        ("(a or b) and c", Logic("and", (Logic("or", (Name("a"), Name("b"))), Name("c")))),
        ("a and b and c", Logic("and", (Name("a"), Name("b"), Name("c")))),
        ("a or b or c", Logic("or", (Name("a"), Name("b"), Name("c")))),
        # `not` is looser than a comparison (as in Python) and tighter than `and`
        ("not a == b", Logic("not", (Compare("==", Name("a"), Name("b")),))),
        ("not a and b", Logic("and", (Logic("not", (Name("a"),)), Name("b")))),
        ("(not a) == b", Compare("==", Logic("not", (Name("a"),)), Name("b"))),
        (
            "a == b and c != d",
            Logic("and", (Compare("==", Name("a"), Name("b")), Compare("!=", Name("c"), Name("d")))),
        ),
        ("x not in y", Compare("not in", Name("x"), Name("y"))),
        ("not x in y", Logic("not", (Compare("in", Name("x"), Name("y")),))),
        ("len(a) >= 2", Compare(">=", Call("len", (Name("a"),)), Literal(Decimal(2)))),
        ("startswith(a or b, 'x')", Call("startswith", (Logic("or", (Name("a"), Name("b"))), Literal("x")))),
    ],
)
def test_precedence(text: str, tree: Any) -> None:
    assert parse(text) == tree


def test_precedence_changes_results() -> None:
    names = {"a": "true", "b": "true", "c": "false"}
    assert run("a or b and c", names) is True
    assert run("(a or b) and c", names) is False
    assert run('not environment == "staging"') is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('(environment == "prod"))', 'unexpected ")" at column 24'),
        ("a == ", "unexpected end of expression at column 6"),
        ("(a", 'expected ")" for the "(" at column 1, found end of expression at column 3'),
        ("len(a b)", 'expected ")" for the "(" at column 4, found name "b" at column 7'),
        ("a b", 'unexpected name "b" at column 3'),
        ("a not b", 'unexpected keyword "not" at column 3'),
        ("a == b == c", "comparisons do not chain: join them with and at column 8"),
        ("a = b", 'unexpected character "=" (use == to compare) at column 3'),
        ("a && b", 'unexpected character "&" (use and) at column 3'),
        ("a || b", 'unexpected character "|" (use or) at column 3'),
        ("!a", 'unexpected character "!" (use not, or != to compare) at column 1'),
        ("a + b", 'unexpected character "+" at column 3'),
        ("a.", 'unexpected character "." at column 2'),
        ('"open', "unterminated string at column 1"),
        ("x == 'it\\'", "unterminated string at column 6"),
        (r'"a\nb"', 'unknown escape "\\n" (only \\\\, \\" and \\\' are escapes) at column 3'),
        ("1.2.3 == version", 'invalid number "1.2.3" (quote versions and ids) at column 1'),
        ("3rd", 'invalid number "3rd" (quote versions and ids) at column 1'),
        ("- 1", 'unexpected character "-" at column 1'),
        ("", "empty expression at column 1"),
        ("   ", "empty expression at column 1"),
        (
            "system('ls')",
            'unknown function "system" (functions: contains, endswith, len, matches, startswith) at column 1',
        ),
        ("len()", "len() takes 1 argument (0 given) at column 1"),
        ("startswith(a)", "startswith() takes 2 arguments (1 given) at column 1"),
        ("len(a,)", 'unexpected ")" at column 7'),
        ("True", None),  # keywords are lowercase: `True` is a name (null), reported by references()
        ("in", 'unexpected keyword "in" at column 1'),
        ("a == 'x' 'y'", "unexpected string 'y' at column 10"),
        ("a\x00", 'unexpected character "\\x00" at column 2'),
    ],
)
def test_errors_point_at_the_column(text: str, message: str | None) -> None:
    if message is None:
        parse(text)
        return
    with pytest.raises(ExprError) as info:
        parse(text)
    assert str(info.value) == message
    assert info.value.position == int(message.rsplit(" ", 1)[1])


def test_error_keeps_message_and_position_and_pickles() -> None:
    with pytest.raises(ExprError) as info:
        parse("a ==")
    error = info.value
    assert (error.message, error.position) == ("unexpected end of expression", 5)
    assert isinstance(error, ValueError)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_length_limit() -> None:
    longest = "a == " + "'" + "x" * (MAX_LENGTH - 7) + "'"
    assert len(longest) == MAX_LENGTH
    parse(longest)
    with pytest.raises(ExprError, match="longer than 2,000 characters"):
        parse(longest + " ")


@pytest.mark.parametrize(
    ("opening", "closing", "levels"),
    [("(", ")", 1), ("not ", "", 1), ("len(", ")", 1), ("(not ", ")", 2), ("startswith(x, ", ")", 1)],
)
def test_nesting_limit(opening: str, closing: str, levels: int) -> None:
    def nest(n: int) -> str:
        return opening * n + "a" + closing * n

    parse(nest(MAX_DEPTH // levels))
    with pytest.raises(ExprError, match="nested deeper than 50 levels"):
        parse(nest(MAX_DEPTH // levels + 1))
    with pytest.raises(ExprError):
        parse(nest(1_000 // len(opening)))  # past Python's recursion limit: still an ExprError


def test_long_flat_chains_are_fine() -> None:
    text = " and ".join(["a"] * 300)
    assert len(text) < MAX_LENGTH
    assert run(text, {"a": "yes"}) is True


def test_references() -> None:
    tree = parse(
        'environment == "prod" and (len(labels) > 1 or stages.b.outputs.v in changed_files) and not x'
    )
    assert references(tree) == {"environment", "labels", "stages.b.outputs.v", "changed_files", "x"}
    assert references(parse("'environment'")) == set()
    assert references(parse("True")) == {"True"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (True, True),
        (False, False),
        (0, False),
        (Decimal("0.0"), False),
        (2, True),
        ("", False),
        ("0", False),
        ("0.00", False),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("no", True),  # only "", "0" and "false": no YAML 1.1 guessing
        ("true", True),
        ("x", True),
        ((), False),
        (("",), True),
        ([], False),
        ({"a": 1}, True),
        (float("nan"), True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_value_of_normalises_host_values() -> None:
    assert value_of(3) == Decimal(3)
    assert value_of(0.1) == Decimal("0.1")
    assert value_of(float("inf")) == "inf"
    assert value_of(Decimal("NaN")) == "NaN"
    assert value_of(["a", 1, None, ["nested"]]) == ("a", Decimal(1), None, "['nested']")
    assert value_of({"k": "v"}) == ("k",)
    assert value_of(Path("p")) == "p"
    assert run('"k" in variables', {"variables": {"k": "v"}}) is True


# ── properties ──────────────────────────────────────────────────────────────────────

TOKENS = [
    "a", "b.c", "stages.x.outputs.y", "labels", "'s'", '"t"', "'\\''", "1", "-2.5", "true", "false", "null",
    "==", "!=", "<", "<=", ">", ">=", "in", "not", "and", "or", "(", ")", ",", "len", "startswith",
    "matches", "contains", "endswith", "=", "!", "&&", ".", "'", '"', "\\", "__import__", "eval", "os",
    "system", "[", "]", "{", "}", ":", "lambda", "*", "**", "-", "1e5", "0x1f", "\n", "é", "\x00",
]  # fmt: skip
token_soup = st.lists(st.sampled_from(TOKENS), max_size=60).flatmap(
    lambda parts: st.sampled_from([" ".join(parts), "".join(parts)])
)
nested = st.tuples(st.integers(0, 300), st.sampled_from(["(", "not ", "len(", "(not "])).map(
    lambda t: t[1] * t[0] + "a" + ")" * (t[0] * t[1].count("("))
)
any_text = (
    st.text(max_size=300) | token_soup | nested | st.text(alphabet="()'\"\\ anotrlq=!<>,", max_size=2100)
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(any_text)
def test_parse_returns_an_expression_or_raises_expr_error(text: str) -> None:
    try:
        tree = parse(text)
    except ExprError as e:
        assert 1 <= e.position <= len(text) + 1 or e.position == MAX_LENGTH + 1
        assert str(e).endswith(f"at column {e.position}")
        return
    assert isinstance(tree, Literal | Name | Logic | Compare | Call)
    assert all(isinstance(n, str) and n for n in references(tree))


host_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=20)
    | st.sampled_from(["0", "false", "10", "-3.5", "1.2.3", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
literals = st.builds(
    Literal,
    st.none() | st.booleans() | st.decimals(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
)
names = st.builds(Name, st.sampled_from(["a", "b", "c", "labels"]))
operators = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in"])
functions = st.sampled_from([("len", 1), ("startswith", 2), ("endswith", 2), ("contains", 2), ("matches", 2)])
trees = st.recursive(
    literals | names,
    lambda inner: (
        st.builds(Logic, st.sampled_from(["and", "or"]), st.lists(inner, min_size=2, max_size=3).map(tuple))
        | st.builds(lambda e: Logic("not", (e,)), inner)
        | st.builds(Compare, operators, inner, inner)
        | functions.flatmap(
            lambda f: st.lists(inner, min_size=f[1], max_size=f[1]).map(lambda a: Call(f[0], tuple(a)))
        )
    ),
    max_leaves=12,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    trees | st.sampled_from([text for text, _ in EXPRESSIONS]).map(parse),
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "labels", "environment", "count", "branch"]), host_values
    ),
)
def test_evaluate_never_raises(tree: Any, values: dict[str, Any]) -> None:
    """Evaluation is total: type mismatches are false (or null), never an exception."""
    result = evaluate(tree, values.get)
    assert result is None or isinstance(result, bool | Decimal | str | tuple)
    assert isinstance(truthy(result), bool)


def test_nan_and_infinity_compare_as_text() -> None:
    names = {"n": float("nan"), "i": float("inf"), "d": Decimal("sNaN")}
    assert run("n == n", names) is True  # never the float rule nan != nan, never Decimal's signal
    assert run('i == "inf"', names) is True
    assert run("d < 1", names) is False  # "sNaN" sorts after "1"


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    '__import__("os").system("touch {marker}")',
    "open('{marker}', 'w')",
    "eval(\"open('{marker}', 'w')\")",
    "exec(\"import os; os.system('touch {marker}')\")",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: open('{marker}', 'w')",
    'f\'{{open("{marker}", "w")}}\'',
    "globals()['__builtins__']",
    "a.__class__",
    "compile('1', 'x', 'eval')",
    "matches('{marker}', '*') or system('touch {marker}')",
    "'$(touch {marker})'",
    "`touch {marker}`",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_text_executes_nothing(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = template.format(marker=marker)
    try:
        tree = parse(text)
    except ExprError:
        pass
    else:
        evaluate(tree, {}.get)  # whatever it is, it is only data
    assert not marker.exists()


def test_parsing_and_evaluating_raise_no_audit_events(tmp_path: Path) -> None:
    """In a fresh interpreter (audit hooks cannot be removed): no exec, compile, import,
    open or process creation happens while hostile or random text is parsed and evaluated."""
    marker = tmp_path / "pwned"
    script = textwrap.dedent(
        f"""
        import random, sys
        from orchestrate.spec.expr import ExprError, evaluate, parse
        hostile = {[t.format(marker=marker) for t in HOSTILE]!r}
        tokens = {TOKENS!r}
        rng = random.Random(7)
        texts = hostile + [" ".join(rng.choices(tokens, k=rng.randint(1, 40))) for _ in range(3000)]
        seen = []
        watching = False
        def hook(event, args):
            if watching and event.split(".")[0] in {{"exec", "compile", "import", "open", "os", "subprocess", "socket"}}:
                seen.append(event)
        sys.addaudithook(hook)
        parsed = 0
        for text in texts:
            watching = True
            try:
                evaluate(parse(text), {{"a": "1", "labels": ["x"]}}.get)
                parsed += 1
            except ExprError:
                pass
            finally:
                watching = False
        assert not seen, seen
        print(parsed)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10  # some random texts were valid and were evaluated too
    assert not marker.exists()
