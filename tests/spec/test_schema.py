"""schema.json is published for editors: it must stand on its own, without the loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from orchestrate.spec.schema_errors import SCHEMA_PATH

SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALID = Path(__file__).parent / "valid"


def _objects(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((path, node))
        for key, value in node.items():
            found.extend(_objects(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_objects(value, f"{path}/{i}"))
    return found


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_fixed_shape_objects_refuse_unknown_keys() -> None:
    # matrix is the one open mapping with properties: its other keys are the axes.
    for path, node in _objects(SCHEMA):
        if path.endswith("/matrix"):
            assert node["additionalProperties"] != {}
            continue
        if path.endswith("/properties/or"):  # the body comes from $ref whenBody
            continue
        assert node.get("additionalProperties") is False, path


def test_every_top_level_and_stage_field_is_described() -> None:
    for name, prop in SCHEMA["properties"].items():
        if name not in ("$schema",):
            assert prop.get("description") or prop.get("$ref"), name
    for name, prop in SCHEMA["$defs"]["stage"]["properties"].items():
        assert prop.get("description") or prop.get("$ref") or name == "description", name


@pytest.mark.parametrize("path", sorted(VALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_valid_examples_pass_the_bare_schema(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert list(Draft202012Validator(SCHEMA).iter_errors(data)) == []


@pytest.mark.parametrize(
    "document",
    [
        {"name": "p", "stages": [{"name": "a", "run": "x", "timeout": "30 minutes"}]},
        {"name": "p", "stages": [{"name": "a", "run": "x", "dependson": "b"}]},
        {"name": "p", "stages": []},
        {"name": "p", "stages": [{"name": "a", "when": {"or": [{"label": "x"}]}}]},
        {"name": "p", "triggers": [{"branches": ["main"]}], "stages": [{"name": "a"}]},
        {"name": "p", "concurrency": {"on_conflict": "wait"}, "stages": [{"name": "a"}]},
        {"name": "p", "stages": [{"name": "a", "matrix": {"os": []}}]},
    ],
)
def test_editors_see_the_same_mistakes(document: dict[str, Any]) -> None:
    assert list(Draft202012Validator(SCHEMA).iter_errors(document))
