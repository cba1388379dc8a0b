"""The public surface is curated, and the core stays free of I/O libraries."""

from __future__ import annotations

import subprocess
import sys

import orchestrate

EXPECTED = {
    "ConfigError", "Engine", "Event", "InputError", "MockProvider", "Mode", "OrchestrateError", "Plan", "Problem",
    "ProviderError", "RunState", "RunStatus", "Settings", "SpecError", "StepState", "StepStatus", "TemplateError",
    "Usage", "Workflow", "json_schema", "load_workflow", "make_provider", "parse_workflow", "resolve_inputs", "run_local",
}  # fmt: skip


def test_public_names_are_exactly_the_curated_list() -> None:
    assert set(orchestrate.__all__) == EXPECTED
    assert all(hasattr(orchestrate, name) for name in EXPECTED)


def test_importing_the_engine_loads_no_io_sdk() -> None:
    code = (
        "import sys, orchestrate, orchestrate.engine.core, orchestrate.engine.local;"
        "heavy = [m for m in ('openai', 'boto3', 'psycopg', 'fastapi', 'httpx') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
