from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrate.spec.interpolate import interpolate, references

HOSTILE = "$(touch /tmp/pwned); \"'` && echo gotcha ${HOME} \\ \n next"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("plain", []),
        ("./deploy ${environment}", ["environment"]),
        ("${a}${b} ${ c }", ["a", "b", "c"]),
        ("$${escaped} ${real}", ["real"]),
        ("$$$${x}", []),
        ("$$${x}", ["x"]),
        ("${stages.build-1.outputs.sha}", ["stages.build-1.outputs.sha"]),
        ("unclosed ${x and $HOME", []),
        ("${}", [""]),
    ],
)
def test_references(text: str, names: list[str]) -> None:
    assert references(text) == names


def test_interpolate_without_shell() -> None:
    values = {"environment": "staging", "run.id": "r1"}
    out = interpolate("deploy ${environment} as ${run.id}; cost $$5, $HOME", values.get, shell=False)
    assert out == "deploy staging as r1; cost $5, $HOME"


def test_interpolate_quotes_for_the_shell() -> None:
    assert (
        interpolate("echo ${a} ${b}", {"a": "x y", "b": "it's"}.get, shell=True) == "echo 'x y' 'it'\"'\"'s'"
    )
    assert interpolate("echo ${a}", {"a": "plain"}.get, shell=True) == "echo plain"


def test_text_without_dollar_is_returned_as_is() -> None:
    text = "make test"
    nothing: dict[str, str] = {}
    assert interpolate(text, nothing.get, shell=True) is text


def test_unresolved_reference_raises_key_error() -> None:
    with pytest.raises(KeyError) as info:
        interpolate("echo ${known} ${missing}", {"known": "k"}.get, shell=True)
    assert info.value.args == ("missing",)


def test_substituted_values_are_not_interpolated_again() -> None:
    values = {"a": "${b}", "b": "no"}
    assert interpolate("${a}", values.get, shell=False) == "${b}"


def test_hostile_value_reaches_the_shell_literally(tmp_path: Path) -> None:
    command = interpolate("printf '%s' ${value}", {"value": HOSTILE}.get, shell=True)
    result = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout == HOSTILE
    assert not list(tmp_path.iterdir())  # nothing was executed
