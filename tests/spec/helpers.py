from __future__ import annotations

import textwrap

import pytest

from orchestrate.domain.errors import SpecError, SpecIssue
from orchestrate.spec.loader import load_pipeline_text
from orchestrate.spec.model import PipelineSpec


def load(text: str) -> PipelineSpec:
    return load_pipeline_text(textwrap.dedent(text).lstrip("\n"), "p.yaml")


def issues(text: str) -> list[SpecIssue]:
    with pytest.raises(SpecError) as info:
        load(text)
    return info.value.issues


def messages(text: str) -> list[str]:
    return [str(i) for i in issues(text)]
