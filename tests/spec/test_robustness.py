"""No user input, however broken, ends in anything but a PipelineSpec or a SpecError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrate.domain.errors import SpecError
from orchestrate.spec.loader import load_pipeline_text
from orchestrate.spec.marks import format_path

BASE = (Path(__file__).parent / "valid" / "design_example.yaml").read_text(encoding="utf-8")
PIECES = [*" \n\t:-[]{}#&*!|>'\"%@`,?$", "${", "}", "<<: *a", "&a ", "null", "~", "depends_on: x", "[]", "{}"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = BASE
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:i] + text[i + draw(st.integers(1, 12)) :]
        else:
            text = text[:i] + draw(st.sampled_from(PIECES)) + text[i:]
    return text


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_definitions_fail_cleanly(text: str) -> None:
    try:
        load_pipeline_text(text, "m.yaml")
    except SpecError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == "m.yaml" and issue.message


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=200))
def test_arbitrary_text_fails_cleanly(text: str) -> None:
    try:
        load_pipeline_text(text, "t.yaml")
    except SpecError as exc:
        assert exc.issues


def test_format_path() -> None:
    assert format_path(()) == ""
    assert format_path(("stages", 3, "timeout")) == "stages[3].timeout"
    assert format_path(("variables", "a b")) == 'variables["a b"]'
    assert format_path(("stages", 0, "env", "MY_VAR")) == "stages[0].env.MY_VAR"


def test_absurd_nesting_is_an_error_not_a_crash() -> None:
    # libyaml would overflow the C stack here and kill the process.
    depth = 100_000
    try:
        load_pipeline_text("name: p\nstages: " + "[" * depth + "]" * depth + "\n", "deep.yaml")
    except SpecError as exc:
        assert [str(i) for i in exc.issues] == ["deep.yaml:1:1: the document is nested too deeply"]
    else:
        raise AssertionError("accepted")
