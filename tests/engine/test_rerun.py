"""Rerun from a step, on both stores: reused steps make no model call and keep their
answers; what runs again sees the edited inputs and outputs; bad requests name what
is wrong and start nothing."""

from __future__ import annotations

import pytest

from orchestrate.engine.local import rerun_local, run_local
from orchestrate.engine.records import RunState
from orchestrate.engine.rerun import RerunError
from orchestrate.errors import ConflictError, InputError
from orchestrate.spec import parse_workflow, resolve_inputs
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider

CHAIN = """
name: chain
inputs: {topic: {default: tea}, tone: {default: calm}}
steps:
  - {id: research, prompt: "About {{ inputs.topic }}", outputs: [{name: audience}, {name: pains, type: array}]}
  - {id: outline, prompt: "Outline for {{ steps.research.outputs.audience }}"}
  - {id: draft, prompt: "Draft {{ outline }} in a {{ inputs.tone }} tone"}
  - {id: polish, prompt: "Polish {{ draft }}"}
  - {id: side, prompt: "Side note on {{ inputs.topic }}"}
"""


async def first_run(env: Env, text: str = CHAIN) -> RunState:
    plan = parse_workflow(text)
    run = await run_local(plan, resolve_inputs(plan.workflow, {}), RecordingProvider(), store=env.store, owner_id=env.owner)
    assert run.status.value == "succeeded"
    return run


async def test_rerun_from_a_middle_step_reuses_the_steps_before_it(env: Env) -> None:
    source = await first_run(env)
    provider = RecordingProvider()
    rerun = await rerun_local(source, "draft", provider, store=env.store)
    assert rerun.status.value == "succeeded"
    assert sorted(provider.prompts()) == sorted([rerun.steps["draft"].prompt, rerun.steps["polish"].prompt])  # two calls, no more
    for sid in ("research", "outline", "side"):
        step, old = rerun.steps[sid], source.steps[sid]
        assert step.reused and step.status.value == "succeeded" and step.usage.total_tokens == 0
        assert (step.output, step.outputs, step.prompt, step.model) == (old.output, old.outputs, old.prompt, old.model)
    assert not rerun.steps["draft"].reused and rerun.steps["draft"].usage.total_tokens > 0
    assert rerun.usage.total_tokens == rerun.steps["draft"].usage.total_tokens + rerun.steps["polish"].usage.total_tokens
    assert (rerun.rerun_of_run_id, rerun.rerun_from) == (source.id, "draft")
    assert rerun.outputs is not None and rerun.outputs["research"] == source.outputs["research"]  # type: ignore[index]
    shown = rerun.to_dict()
    assert shown["rerun_of"] == {"run_id": source.id, "from": "draft"}
    assert [s["id"] for s in shown["steps"] if s["reused"]] == ["research", "outline", "side"]
    events = await env.store.events(rerun.id)
    assert [e.step_id for e in events if e.type == "step.reused"] == ["research", "outline", "side"]
    assert not any(e.type == "step.started" and e.step_id in ("research", "outline", "side") for e in events)
    assert events[-1].type == "run.succeeded"


async def test_an_edited_output_flows_downstream(env: Env) -> None:
    source = await first_run(env)
    provider = RecordingProvider()
    edited = {"audience": "night-shift nurses", "pains": ["sleep"]}
    rerun = await rerun_local(source, "polish", provider, store=env.store, outputs={"research": edited})
    research = rerun.steps["research"]
    assert research.reused and research.outputs == edited
    assert rerun.steps["outline"].prompt == "Outline for night-shift nurses"
    assert not rerun.steps["outline"].reused and not rerun.steps["draft"].reused
    assert rerun.steps["side"].reused  # reads neither research nor a changed input
    assert len(provider.requests) == 3  # outline, draft, polish
    events = await env.store.events(rerun.id)
    assert [e.data.get("edited") for e in events if e.type == "step.reused"] == [True, False]


async def test_a_changed_input_reruns_the_steps_that_read_it(env: Env) -> None:
    source = await first_run(env)
    provider = RecordingProvider()
    rerun = await rerun_local(source, "polish", provider, store=env.store, inputs={"tone": "bold"})
    assert rerun.inputs == {"topic": "tea", "tone": "bold"}
    assert "bold tone" in (rerun.steps["draft"].prompt or "")
    assert {sid for sid, s in rerun.steps.items() if s.reused} == {"research", "outline", "side"}
    assert len(provider.requests) == 2  # draft (reads tone) and polish


async def test_a_for_each_step_is_reused_with_its_list(env: Env) -> None:
    text = """
name: fan
steps:
  - {id: ideas, prompt: "Ideas", outputs: [{name: list, type: array}]}
  - {id: each, for_each: "{{ steps.ideas.outputs.list }}", prompt: "Expand {{ item }}"}
  - {id: pick, prompt: "Pick one of {{ each | join(', ') }}"}
"""
    source = await first_run(env, text)
    provider = RecordingProvider()
    rerun = await rerun_local(source, "pick", provider, store=env.store)
    each = rerun.steps["each"]
    assert each.reused and each.outputs == source.steps["each"].outputs and each.output == source.steps["each"].output
    assert len(provider.requests) == 1 and rerun.steps["pick"].prompt == source.steps["pick"].prompt
    assert not any(s.parent for s in rerun.steps.values())  # items are not copied: the list is the answer


async def test_a_failed_source_step_runs_again(env: Env) -> None:
    from orchestrate.errors import ProviderRejected

    def fail(request: object, count: int) -> None:
        raise ProviderRejected("no")

    plan = parse_workflow(CHAIN)
    provider = RecordingProvider(fail=lambda r, n: fail(r, n) if r.messages[-1]["content"].startswith("Side") else None)
    source = await run_local(plan, resolve_inputs(plan.workflow, {}), provider, store=env.store, owner_id=env.owner)
    assert source.status.value == "failed"
    rerun = await rerun_local(source, "polish", RecordingProvider(), store=env.store)
    assert rerun.status.value == "succeeded"
    assert not rerun.steps["side"].reused  # failed (or was cancelled) in the source


@pytest.mark.parametrize(
    ("from_step", "outputs", "path", "message"),
    [
        ("drfat", {}, "from", "unknown step 'drfat'; did you mean 'draft'?"),
        ("draft", {"nope": "x"}, "outputs.nope", "unknown step 'nope'"),
        ("draft", {"polish": "x"}, "outputs.polish", "runs again in this rerun"),
        ("draft", {"draft": "x"}, "outputs.draft", "runs again in this rerun"),
        ("draft", {"research": "text"}, "outputs.research", "give an object with audience, pains"),
        ("draft", {"research": {"audience": "a"}}, "outputs.research", "missing field 'pains'"),
        ("draft", {"outline": {"a": 1}}, "outputs.outline", "answers text: give a string"),
    ],
)
async def test_bad_rerun_requests_name_what_is_wrong(env: Env, from_step: str, outputs: dict[str, object], path: str, message: str) -> None:
    source = await first_run(env)
    with pytest.raises(RerunError) as caught:
        await rerun_local(source, from_step, RecordingProvider(), store=env.store, outputs=outputs)
    assert caught.value.problems[0][0] == path and message in caught.value.problems[0][1]


async def test_bad_inputs_and_unfinished_runs_are_refused(env: Env) -> None:
    source = await first_run(env)
    with pytest.raises(InputError, match="input 'tone': expected string"):
        await rerun_local(source, "draft", RecordingProvider(), store=env.store, inputs={"tone": 3})
    with pytest.raises(InputError, match="unknown input"):
        await rerun_local(source, "draft", RecordingProvider(), store=env.store, inputs={"colour": "red"})
    running = RunState(**{**source.__dict__, "status": source.status.__class__("running")})
    with pytest.raises(ConflictError, match="rerun a finished run"):
        await rerun_local(running, "draft", RecordingProvider(), store=env.store)


async def test_a_skipped_step_is_reused_as_skipped(env: Env) -> None:
    text = """
name: gate
inputs: {go: {type: boolean, default: false}}
steps:
  - {id: a, prompt: start}
  - {id: maybe, when: "inputs.go", prompt: "{{ a }}"}
  - {id: other, prompt: "other {{ a }}"}
  - {id: last, needs: [maybe, other], when: "steps.maybe.status == 'skipped'", prompt: "last {{ other }}"}
"""
    source = await first_run(env, text)
    assert source.steps["maybe"].status.value == "skipped"
    provider = RecordingProvider()
    rerun = await rerun_local(source, "last", provider, store=env.store)
    assert rerun.status.value == "succeeded" and len(provider.requests) == 1
    maybe = rerun.steps["maybe"]
    assert maybe.reused and maybe.status.value == "skipped" and rerun.steps["last"].status.value == "succeeded"
    events = await env.store.events(rerun.id)
    assert [(e.step_id, e.data["status"]) for e in events if e.type == "step.reused"] == [("a", "succeeded"), ("maybe", "skipped"), ("other", "succeeded")]
