"""Whatever goes wrong while a step executes ends in a recorded outcome: the step
fails with a stable error type, never stays `running` until its lease lapses."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from orchestrate import templates
from orchestrate.engine.local import run_local
from orchestrate.engine.records import RunState
from orchestrate.llm import ChatRequest
from orchestrate.spec import parse_workflow, resolve_inputs
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider

TWO = "name: x\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: 'boom {{ a }}'}\n"


async def run(env: Env, provider: RecordingProvider) -> RunState:
    plan = parse_workflow(TWO)
    return await run_local(plan, resolve_inputs(plan.workflow, {}), provider, store=env.store, owner_id=env.owner)


def raising(exc: BaseException) -> RecordingProvider:
    def fail(request: ChatRequest, count: int) -> None:
        if "boom" in request.messages[-1]["content"]:
            raise exc

    return RecordingProvider(fail=fail)


async def test_memory_error_in_the_provider_fails_the_step(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "orchestrate.engine")
    result = await run(env, raising(MemoryError()))
    assert result.status.value == "failed"
    assert {s: v.status.value for s, v in result.steps.items()} == {"a": "succeeded", "b": "failed"}
    assert result.error is not None and result.error.type == "step-crashed" and result.error.step_id == "b"
    assert "MemoryError" in result.error.message
    crashed = [r for r in caplog.records if "MemoryError" in r.getMessage()]
    assert len(crashed) == 1 and crashed[0].exc_info is None  # one line, no traceback


async def test_memory_error_while_rendering_fails_the_step(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    real = templates.render

    def render(source: str, context: dict[str, Any]) -> str:
        if "boom" in source:
            raise MemoryError
        return real(source, context)

    monkeypatch.setattr(templates, "render", render)
    provider = RecordingProvider()
    result = await run(env, provider)
    assert result.steps["b"].status.value == "failed"
    assert result.error is not None and result.error.type == "step-crashed"
    assert len(provider.requests) == 1


def test_memory_error_inside_the_sandbox_is_a_template_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exhausted:
        def render(self, context: dict[str, Any]) -> str:
            raise MemoryError

    monkeypatch.setattr(templates, "_compiled", lambda source: Exhausted())
    with pytest.raises(templates.TemplateError, match="ran out of memory"):
        templates.render("{{ x }}", {})


async def test_an_unexpected_error_fails_the_step_and_logs_its_traceback(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    result = await run(env, raising(RuntimeError("a bug")))
    assert result.steps["b"].status.value == "failed"
    assert result.error is not None and result.error.type == "internal-error" and "a bug" not in result.error.message
    bugs = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert len(bugs) == 1 and bugs[0].exc_info is not None
