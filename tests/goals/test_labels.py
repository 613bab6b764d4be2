"""`labels:` on a pipeline: what goals link to."""

from __future__ import annotations

import json

from orchestrate.spec.model import PipelineSpec
from tests.spec.helpers import load, messages


def test_labels_are_read_and_survive_the_compiled_definition() -> None:
    spec = load(
        """
        name: spec-writer
        labels: [specs, docs]
        stages:
          - {name: write, run: echo hi}
        """
    )
    assert spec.labels == ("specs", "docs")
    assert PipelineSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).labels == ("specs", "docs")


def test_a_definition_compiled_before_labels_has_none() -> None:
    data = load("name: p\nstages:\n  - {name: a, run: 'true'}\n").to_dict()
    del data["labels"]
    assert PipelineSpec.from_dict(data).labels == ()


def test_labels_must_be_a_list_of_distinct_names() -> None:
    assert any(
        "labels" in m for m in messages("name: p\nlabels: specs\nstages:\n  - {name: a, run: 'true'}\n")
    )
    assert any(
        "labels" in m for m in messages("name: p\nlabels: [a, a]\nstages:\n  - {name: a, run: 'true'}\n")
    )
