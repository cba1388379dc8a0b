"""Orchestrate: run multi-step LLM workflows written in YAML.

    >>> from orchestrate import load_workflow, resolve_inputs, run_local, MockProvider
"""

from __future__ import annotations

from .engine.core import Engine
from .engine.local import run_local
from .engine.records import Event, Mode, RunState, RunStatus, StepState, StepStatus, Usage
from .errors import (
    ConfigError,
    InputError,
    OrchestrateError,
    Problem,
    ProviderError,
    SpecError,
    TemplateError,
)
from .llm import MockProvider, make_provider
from .settings import Settings
from .spec import Plan, Workflow, json_schema, load_workflow, parse_workflow, resolve_inputs

__all__ = [
    "ConfigError",
    "Engine",
    "Event",
    "InputError",
    "MockProvider",
    "Mode",
    "OrchestrateError",
    "Plan",
    "Problem",
    "ProviderError",
    "RunState",
    "RunStatus",
    "Settings",
    "SpecError",
    "StepState",
    "StepStatus",
    "TemplateError",
    "Usage",
    "Workflow",
    "json_schema",
    "load_workflow",
    "make_provider",
    "parse_workflow",
    "resolve_inputs",
    "run_local",
]
