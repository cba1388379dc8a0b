"""The workflow language: parse, validate and compile YAML or JSON workflows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .inputs import parse_pairs, resolve_inputs
from .model import STEP_KINDS, Workflow
from .plan import Plan, StepPlan, build, compile_workflow
from .yamlsource import decode, load, read_text

__all__ = [
    "Plan",
    "build",
    "dump_spec",
    "StepPlan",
    "Workflow",
    "compile_workflow",
    "json_schema",
    "load_workflow",
    "parse_pairs",
    "parse_workflow",
    "resolve_inputs",
]


def parse_workflow(source: str | bytes, file: str | None = None) -> Plan:
    """Parse, validate and compile a workflow from YAML (JSON is YAML too)."""
    text = decode(source, file) if isinstance(source, bytes) else source
    data, marks = load(text, file)
    return build(data, marks, file)


def load_workflow(path: str | Path) -> Plan:
    path = Path(path)
    return parse_workflow(read_text(path), str(path))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the workflow language, for editors."""
    schema = Workflow.model_json_schema()
    # What the model's validator says: a step has exactly one kind.
    schema["$defs"]["Step"]["oneOf"] = [{"required": [kind]} for kind in STEP_KINDS]
    schema["$defs"]["WorkflowCall"]["oneOf"] = [{"required": ["id"]}, {"required": ["name"]}]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Orchestrate workflow"
    return schema


def dump_spec(plan: Plan) -> dict[str, Any]:
    """The normalized spec as JSON-ready data (what a run snapshots)."""
    spec: dict[str, Any] = json.loads(plan.workflow.model_dump_json(exclude_unset=True))
    return spec
