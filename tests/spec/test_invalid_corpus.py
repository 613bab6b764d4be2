"""Every file in invalid/ states its exact first error (and hint) in its opening comments.

    # expect: {file}:LINE:COL: field.path: message
    # hint: the hint, when there is one

``{file}`` stands for the path the loader was given, so the messages are exact.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrate.domain.errors import SpecError
from orchestrate.spec.loader import load_pipeline

INVALID = Path(__file__).parent / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


def _expectations(path: Path) -> tuple[str, str | None]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    expect = lines[0].removeprefix("# expect: ")
    hint = lines[1].removeprefix("# hint: ") if len(lines) > 1 and lines[1].startswith("# hint: ") else None
    return expect, hint


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_first_error_is_exact(path: Path) -> None:
    expect, hint = _expectations(path)
    shown = f"pipelines.d/{path.name}"
    with pytest.raises(SpecError) as info:
        load_pipeline(path, display_path=shown)
    first = info.value.issues[0]
    assert str(first) == expect.replace("{file}", shown)
    assert first.hint == hint
    # The exception's own message is the first issue, and every issue names the file.
    assert str(info.value) == str(first)
    assert all(issue.file == shown for issue in info.value.issues)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_every_issue_is_located(path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_pipeline(path)
    for issue in info.value.issues:
        assert issue.line is not None and issue.line >= 1, issue
        assert issue.column is not None and issue.column >= 1, issue
