"""The run protocol and its decisions, observed as a user would: step states,
outputs, the event log, and how often the model was called."""

from __future__ import annotations

import pytest

from orchestrate.engine.core import Engine
from orchestrate.engine.local import run_local
from orchestrate.engine.queue import InProcessQueue
from orchestrate.engine.records import RunState, StepMessage
from orchestrate.errors import ProviderAuthError, ProviderTransient
from orchestrate.llm import ChatRequest
from orchestrate.spec import parse_workflow, resolve_inputs
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider


async def run(env: Env, text: str, provider: RecordingProvider | None = None, **inputs: object) -> RunState:
    plan = parse_workflow(text)
    return await run_local(plan, resolve_inputs(plan.workflow, inputs), provider or RecordingProvider(), store=env.store, owner_id=env.owner)


def statuses(run: RunState) -> dict[str, str]:
    return {sid: s.status.value for sid, s in run.steps.items()}


FANOUT = """
name: fan
inputs: {topic: {default: tea}}
steps:
  - {id: research, prompt: "About {{ inputs.topic }}", outputs: [{name: audience}, {name: pains, type: array}]}
  - {id: a, prompt: "A {{ steps.research.outputs.audience }}"}
  - {id: b, prompt: "B {{ steps.research.outputs.pains | join(', ') }}"}
  - {id: c, prompt: "C {{ research }}"}
  - {id: join, prompt: "{{ a }} / {{ steps.b.output }} / {{ steps.c.output }}"}
"""


async def test_fan_out_runs_in_parallel_and_joins(env: Env) -> None:
    provider = RecordingProvider(delay=0.3)  # long enough that claims under load still overlap
    result = await run(env, FANOUT, provider)
    assert result.status.value == "succeeded"
    assert set(statuses(result).values()) == {"succeeded"}
    assert provider.peak == 3  # a, b and c were in flight together
    research = result.steps["research"]
    assert set(research.outputs or {}) == {"audience", "pains"}
    assert result.steps["b"].prompt == "B " + ", ".join(research.outputs["pains"])  # type: ignore[index]
    join = result.steps["join"]
    assert join.prompt == f"{result.steps['a'].output} / {result.steps['b'].output} / {result.steps['c'].output}"
    assert result.outputs is not None and result.outputs["join"] == join.output
    assert result.usage.total_tokens == sum(s.usage.total_tokens for s in result.steps.values()) > 0


async def test_every_step_records_what_a_user_needs(env: Env) -> None:
    result = await run(env, "name: x\ndefaults: {model: gpt-4o-mini}\nsteps:\n  - {id: a, prompt: hi, model: gpt-4o}\n  - {id: b, prompt: '{{ a }}'}\n")
    a, b = result.steps["a"], result.steps["b"]
    assert (a.model, b.model) == ("mock-gpt-4o", "mock-gpt-4o-mini")
    assert a.prompt == "hi" and a.output and a.attempt == 1 and a.latency_ms is not None
    assert a.usage.total_tokens > 0 and a.started_at and a.finished_at


async def test_conversation_mode_sends_history(env: Env) -> None:
    provider = RecordingProvider()
    text = "name: chat\ndefaults: {system: Be brief.}\nsteps:\n  - {id: one, prompt: First}\n  - {id: two, prompt: Second}\n  - {id: three, prompt: Third}\n"
    result = await run(env, text, provider)
    assert result.status.value == "succeeded"
    last = provider.requests[-1].messages
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"] == "First" and last[2]["content"] == result.steps["one"].output
    assert last[-1]["content"] == "Third"


CONDITIONS = """
name: cond
inputs: {go: {type: boolean, default: false}}
steps:
  - {id: gate, prompt: start}
  - {id: maybe, when: "inputs.go", prompt: "{{ gate }}"}
  - {id: after_maybe, prompt: "{{ maybe }}"}
  - {id: rescue, needs: [maybe], when: "steps.maybe.status == 'skipped'", prompt: "{{ gate }} again"}
"""


async def test_when_skips_and_skipping_propagates_unless_a_when_says_otherwise(env: Env) -> None:
    provider = RecordingProvider()
    result = await run(env, CONDITIONS, provider)
    assert statuses(result) == {"gate": "succeeded", "maybe": "skipped", "after_maybe": "skipped", "rescue": "succeeded"}
    assert result.status.value == "succeeded"
    assert len(provider.requests) == 2
    result = await run(env, CONDITIONS, RecordingProvider(), go=True)
    assert statuses(result) == {"gate": "succeeded", "maybe": "succeeded", "after_maybe": "succeeded", "rescue": "skipped"}


def fail_on(word: str, error: Exception, times: int = 10**9):  # noqa: ANN201
    def fail(request: ChatRequest, nth: int) -> None:
        if word in request.messages[-1]["content"] and nth <= times:
            raise error

    return fail


async def test_a_terminal_error_fails_fast_with_the_step_named(env: Env) -> None:
    text = "name: x\nsteps:\n  - {id: a, prompt: ok}\n  - {id: b, prompt: 'boom {{ a }}'}\n  - {id: c, prompt: '{{ b }}'}\n"
    provider = RecordingProvider(fail=fail_on("boom", ProviderAuthError("bad key")))
    result = await run(env, text, provider)
    assert result.status.value == "failed"
    assert statuses(result) == {"a": "succeeded", "b": "failed", "c": "cancelled"}
    assert result.error is not None and result.error.step_id == "b" and "bad key" in result.error.message
    assert len(provider.requests) == 2  # b was not retried, c never ran


async def test_transient_errors_retry_the_step_then_succeed(env: Env) -> None:
    text = "name: x\nsteps:\n  - {id: a, prompt: flaky, retry: {max_attempts: 3, initial_delay: 0}, timeout: 0.2}\n"
    provider = RecordingProvider(fail=fail_on("flaky", ProviderTransient("503", retry_after=5), times=2))
    result = await run(env, text, provider)
    assert result.status.value == "succeeded"
    assert result.steps["a"].attempt == 3


async def test_transient_errors_give_up_after_max_attempts(env: Env) -> None:
    text = "name: x\nsteps:\n  - {id: a, prompt: flaky, retry: {max_attempts: 2, initial_delay: 0}, timeout: 0.2}\n"
    result = await run(env, text, RecordingProvider(fail=fail_on("flaky", ProviderTransient("503", retry_after=5))))
    assert result.status.value == "failed"
    assert result.error is not None and "gave up after 2 attempts" in result.error.message


async def test_a_template_that_fails_at_run_time_fails_the_step(env: Env) -> None:
    text = "name: x\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: \"{{ steps.a.output ~ ('x' * 2000000) }}\"}\n"
    result = await run(env, text)
    assert statuses(result)["b"] == "failed"
    assert result.error is not None and result.error.type == "template-error"


async def test_event_log_is_gapless_and_matches_the_final_states(env: Env) -> None:
    result = await run(env, FANOUT)
    events = await env.store.events(result.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    last: dict[str, str] = {}
    for e in events:
        if e.step_id and e.type != "step.started":
            last[e.step_id] = e.type.removeprefix("step.")
    assert last == statuses(result)
    assert events[-1].type == "run.succeeded"


async def test_a_duplicate_message_neither_calls_the_model_twice_nor_writes_twice(env: Env) -> None:
    provider = RecordingProvider()
    queue = InProcessQueue()
    engine = Engine(env.store, queue, provider)
    plan = parse_workflow("name: x\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: '{{ a }}'}\n")
    started = await engine.start(plan, {}, owner_id=env.owner)
    message = StepMessage(started.id, "a")
    assert await engine.process(message) is True
    assert await engine.process(message) is False  # duplicate: acknowledged, nothing done
    assert len(provider.requests) == 1
    events = await env.store.events(started.id)
    assert sum(e.type == "step.succeeded" and e.step_id == "a" for e in events) == 1
    assert sum(e.type == "step.queued" and e.step_id == "b" for e in events) == 1
    queue.close()


@pytest.mark.parametrize("n", [1, 10])
async def test_ten_independent_steps_overlap(env: Env, n: int) -> None:
    steps = "\n".join(f"  - {{id: s{i}, prompt: 'task {i} {{{{ inputs.x }}}}'}}" for i in range(n))
    provider = RecordingProvider(delay=0.5)
    result = await run(env, f"name: p\nconversation: false\ninputs: {{x: {{default: y}}}}\nsteps:\n{steps}\n", provider)
    assert result.status.value == "succeeded"
    assert provider.peak == n


async def test_a_run_keeps_at_most_its_cap_of_steps_in_flight(env: Env) -> None:
    steps = "\n".join(f"  - {{id: s{i}, prompt: 'task {i}'}}" for i in range(7))
    text = f"name: p\nconversation: false\nsteps:\n{steps}\n  - {{id: last, prompt: 'join', needs: [{', '.join(f's{i}' for i in range(7))}]}}\n"
    provider = RecordingProvider(delay=0.2)
    plan = parse_workflow(text)
    result = await run_local(plan, {}, provider, store=env.store, owner_id=env.owner, max_in_flight=3)
    assert result.status.value == "succeeded" and set(statuses(result).values()) == {"succeeded"}
    assert provider.peak == 3  # the other four waited in the store, not in the queue
    assert len(provider.requests) == 8
    events = await env.store.events(result.id)
    assert sum(e.type == "step.queued" for e in events) == 8  # queued once each, held or not


async def test_a_skip_decided_at_claim_propagates_and_completes_once(env: Env) -> None:
    text = "name: s\ninputs: {go: {type: boolean, default: false}}\nsteps:\n  - {id: a, when: inputs.go, prompt: one}\n  - {id: b, prompt: '{{ a }}'}\n  - {id: c, prompt: '{{ b }}'}\n"
    provider = RecordingProvider()
    result = await run(env, text, provider)
    assert statuses(result) == {"a": "skipped", "b": "skipped", "c": "skipped"} and result.status.value == "succeeded"
    assert provider.requests == []
    events = await env.store.events(result.id)
    assert [e.type for e in events if e.step_id == "b"] == ["step.queued", "step.started", "step.skipped"]
    assert [e.data["reason"] for e in events if e.type == "step.skipped"] == ["condition is false", "dependency a did not succeed", "dependency b did not succeed"]
