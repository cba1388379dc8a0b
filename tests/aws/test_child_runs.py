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


def test_a_child_run_through_sqs(runtime: Runtime, make_user: Callable[..., str]) -> None:
    from orchestrate.db.workflows import Workflows
    from orchestrate.spec import dump_spec, parse_workflow

    owner = make_user()
    engine: Any = runtime.run(runtime.engine())
    child = "name: kid\ninputs: {x: {type: string}}\nsteps:\n  - {id: k, prompt: 'kid {{ inputs.x }}'}\n"
    runtime.run(Workflows(engine.store).create(owner, name="kid", description="", source=child, spec=dump_spec(parse_workflow(child))))
    parent = start(runtime, owner, "name: p\nsteps:\n  - {id: a, prompt: one}\n  - {id: sub, workflow: {name: kid, inputs: {x: '{{ a }}'}}}\n")
    final = drive(runtime, parent.id, until=lambda r: r.status.finished)
    assert final.status is RunStatus.SUCCEEDED, final.error
    kid = runtime.run(engine.store.get_run(final.steps["sub"].child_run_id))
    assert kid.parent_run_id == parent.id and kid.status is RunStatus.SUCCEEDED
    assert final.steps["sub"].outputs == kid.outputs and kid.steps["k"].prompt == f"kid {final.steps['a'].output}"
