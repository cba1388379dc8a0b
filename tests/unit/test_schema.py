"""The published JSON Schema agrees with the parser."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrate.errors import SpecError
from orchestrate.spec import json_schema, parse_workflow
from tests.corpus import PROTOTYPE, workflow_files

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "examples").glob("*.yaml")) + workflow_files(PROTOTYPE)
VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_schema_accepts_what_the_parser_accepts(path: Path) -> None:
    VALIDATOR.validate(yaml.safe_load(path.read_text()))
    parse_workflow(path.read_text())


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "x"},
        {"steps": [{"id": "a", "prompt": "p"}]},
        {"name": "x", "steps": [{"id": "a", "promt": "p"}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "temperature": 3}]},
        {"name": "x", "steps": [{"id": "1a", "prompt": "p"}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "outputs": [{"name": "o", "type": "date"}]}]},
        {"name": "x", "inputs": {"n": {"type": "int"}}, "steps": [{"id": "a", "prompt": "p"}]},
        {"name": "x", "steps": []},
        {"name": "x", "extra": 1, "steps": [{"id": "a", "prompt": "p"}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "for_each": "{{ [1] }}", "concurrency": 0}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "for_each": "{{ [1] }}", "concurrency": -3}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "for_each": "{{ [1] }}", "concurrency": 1001}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "for_each": "{{ [1] }}", "on_item_error": "sometimes"}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "for_each": "{{ [1] }}", "on_item_error": "150%"}]},
        {"name": "x", "steps": [{"id": "a", "prompt": "p", "for_each": ""}]},
    ],
)
def test_schema_rejects_what_the_parser_rejects(doc: dict) -> None:
    assert list(VALIDATOR.iter_errors(doc))
    with pytest.raises(SpecError):
        parse_workflow(yaml.safe_dump(doc))
