"""Reruns and child runs through the step runner's handler and a local SQS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrate.aws.runtime import Runtime
from orchestrate.engine.records import RunStatus
from tests.aws.test_step_runner import drive, runtime, start  # noqa: F401 (runtime: a fixture)
from tests.fakes.providers import RecordingProvider

CHAIN = "name: c\nsteps:\n  - {id: a, prompt: one}\n  - {id: b, prompt: 'two {{ a }}'}\n  - {id: c, prompt: 'three {{ b }}'}\n"


def test_a_rerun_through_sqs_calls_the_model_only_for_what_runs_again(runtime: Runtime, make_user: Callable[..., str]) -> None:
    engine: Any = runtime.run(runtime.engine())
    source = drive(runtime, start(runtime, make_user(), CHAIN).id, until=lambda r: r.status.finished)
    assert source.status is RunStatus.SUCCEEDED
    engine.provider = provider = RecordingProvider()
    rerun = runtime.run(engine.rerun(source, "b", outputs={"a": "edited"}))
    final = drive(runtime, rerun.id, until=lambda r: r.status.finished)
    assert final.status is RunStatus.SUCCEEDED
    assert provider.prompts() == ["two edited", f"three {final.steps['b'].output}"]  # a was not called
    assert final.steps["a"].reused and final.steps["a"].attempt == 0 and final.steps["a"].output == "edited"
    assert final.rerun_of_run_id == source.id and final.usage.total_tokens == final.steps["b"].usage.total_tokens + final.steps["c"].usage.total_tokens
