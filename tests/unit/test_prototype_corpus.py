"""The prototype's own workflow files (../shared/compat/, beside the repository in CI)
load, match the JSON Schema and run unchanged. A clone without that folder skips this
module with the reason; the repository's own files in the same formats are tested in
test_spec.py and test_cli.py either way."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrate.spec import json_schema, load_workflow
from tests.corpus import SHARED_COMPAT, file_id, workflow_files
from tests.unit.test_cli import run_unchanged

if not SHARED_COMPAT.is_dir():
    pytest.skip(f"the prototype's files are not here: {SHARED_COMPAT} does not exist (a clone without the team folder)", allow_module_level=True)

FILES = workflow_files(SHARED_COMPAT)  # empty -> fails at collection (pyproject: empty_parameter_set_mark)


def test_both_formats_are_in_the_corpus() -> None:
    assert {p.parent.name for p in FILES} == {"v0.1", "v0.2"}


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_prototype_file_loads_and_matches_the_schema(path: Path) -> None:
    jsonschema.Draft202012Validator(json_schema()).validate(yaml.safe_load(path.read_text()))
    assert load_workflow(path).steps


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_prototype_file_runs_unchanged(path: Path) -> None:
    run_unchanged(path)
