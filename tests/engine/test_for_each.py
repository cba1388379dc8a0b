"""for_each: one execution per item, on every store."""

from __future__ import annotations

import json

import pytest

from orchestrate.engine.core import Engine
from orchestrate.engine.kinds.prompt import MAX_ITEM_ANSWER
from orchestrate.engine.decide import Action
from orchestrate.engine.local import run_local
from orchestrate.engine.queue import InProcessQueue
from orchestrate.engine.records import RunState
from orchestrate.errors import ProviderAuthError
from orchestrate.llm import ChatRequest
from orchestrate.spec import parse_workflow, resolve_inputs
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider

MAP = """
name: map
inputs: {topics: {type: array, default: [tea, coffee, cocoa, mate, chai]}}
steps:
  - id: drafts
    for_each: "{{ inputs.topics }}"
    concurrency: 2
    prompt: "Write about {{ item }} ({{ loop.index }} of {{ loop.length }})"
  - {id: summary, prompt: "Summarise: {{ drafts | join(' / ') }}"}
"""


async def run(env: Env, text: str, provider: RecordingProvider | None = None, **inputs: object) -> RunState:
    plan = parse_workflow(text)
    return await run_local(plan, resolve_inputs(plan.workflow, inputs), provider or RecordingProvider(), store=env.store, owner_id=env.owner)


async def test_each_item_is_its_own_execution_and_the_answer_is_the_list_in_order(env: Env) -> None:
    provider = RecordingProvider(delay=0.1)
    result = await run(env, MAP, provider)
    assert result.status.value == "succeeded"
    items = [f"drafts[{i}]" for i in range(5)]
    assert list(result.steps) == ["drafts", *items, "summary"]
    assert [result.steps[i].prompt for i in items] == [f"Write about {t} ({n} of 5)" for n, t in enumerate(["tea", "coffee", "cocoa", "mate", "chai"], 1)]
    answers = [result.steps[i].output for i in items]
    drafts = result.steps["drafts"]
    assert json.loads(drafts.output or "") == answers and drafts.outputs == answers
    assert result.steps["summary"].prompt == "Summarise: " + " / ".join(answers)  # type: ignore[arg-type]
    assert provider.peak == 2  # concurrency: 2
    assert len(provider.requests) == 6
    assert result.outputs is not None and result.outputs["drafts"] == answers and "drafts[0]" not in result.outputs
    events = await env.store.events(result.id)
    for sid in items:
        assert [e.type for e in events if e.step_id == sid] == ["step.queued", "step.started", "step.succeeded"]
    assert [e.data.get("items") for e in events if e.step_id == "drafts" and e.type in ("step.expanded", "step.succeeded")] == [5, 5]


@pytest.mark.parametrize(
    ("expression", "got"),
    [("'abc'", "not a string"), ("42", "not a number"), ("none", "not null"), ("range(1001) | list", "1001 items")],
)
async def test_a_for_each_over_what_is_not_a_short_list_fails_the_step_naming_it(env: Env, expression: str, got: str) -> None:
    text = f"name: bad\nsteps:\n  - {{id: fan, for_each: \"{{{{ {expression} }}}}\", prompt: '{{{{ item }}}}'}}\n"
    provider = RecordingProvider()
    result = await run(env, text, provider)
    assert result.status.value == "failed" and result.steps["fan"].status.value == "failed"
    assert result.error is not None and result.error.step_id == "fan" and "step 'fan'" in result.error.message and got in result.error.message
    assert provider.requests == []


def failing(word: str):  # noqa: ANN201
    def fail(request: ChatRequest, nth: int) -> None:
        if word in request.messages[-1]["content"]:
            raise ProviderAuthError("bad key")

    return fail


async def test_a_failed_item_fails_the_step_by_default(env: Env) -> None:
    result = await run(env, MAP, RecordingProvider(fail=failing("cocoa")))
    assert result.status.value == "failed"
    assert result.error is not None and result.error.step_id == "drafts" and "drafts[2]" in result.error.message
    assert result.steps["drafts[2]"].status.value == "failed" and result.steps["summary"].status.value == "cancelled"


async def test_continue_and_a_share_tolerate_failed_items(env: Env) -> None:
    tolerant = MAP.replace("concurrency: 2", "concurrency: 2\n    on_item_error: continue")
    result = await run(env, tolerant, RecordingProvider(fail=failing("cocoa")))
    assert result.status.value == "succeeded"
    outputs = result.steps["drafts"].outputs
    assert isinstance(outputs, list) and outputs[2] is None and all(outputs[i] for i in (0, 1, 3, 4))
    share = MAP.replace("concurrency: 2", "concurrency: 2\n    on_item_error: '20%'")
    assert (await run(env, share, RecordingProvider(fail=failing("cocoa")))).status.value == "succeeded"  # 1 of 5
    assert (await run(env, share, RecordingProvider(fail=failing("c")))).status.value == "failed"  # 3 of 5


async def test_an_item_whose_answer_is_too_large_fails_that_item(env: Env) -> None:
    from orchestrate.engine.records import Usage
    from orchestrate.llm import Completion

    class Big(RecordingProvider):
        async def complete(self, request: ChatRequest) -> Completion:
            if "coffee" in request.messages[-1]["content"]:
                return Completion("x" * (MAX_ITEM_ANSWER + 1), None, "m", Usage(1, 1))
            return await super().complete(request)

    result = await run(env, MAP.replace("concurrency: 2", "concurrency: 2\n    on_item_error: continue"), Big())
    assert result.status.value == "succeeded"
    item = result.steps["drafts[1]"]
    assert item.status.value == "failed" and item.error is not None and item.error.type == "output-too-large"


async def test_an_empty_list_succeeds_with_an_empty_answer(env: Env) -> None:
    result = await run(env, MAP, topics=[])
    assert result.status.value == "succeeded" and result.steps["drafts"].outputs == []
    assert result.steps["summary"].prompt == "Summarise: "


async def test_a_run_retry_runs_a_failed_for_each_again(env: Env) -> None:
    broken = {"on": True}

    def fail(request: ChatRequest, nth: int) -> None:
        if broken["on"] and "mate" in request.messages[-1]["content"]:
            raise ProviderAuthError("bad key")

    queue = InProcessQueue()
    engine = Engine(env.store, queue, RecordingProvider(fail=fail))
    plan = parse_workflow(MAP)
    started = await engine.start(plan, resolve_inputs(plan.workflow, {}), owner_id=env.owner)
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    assert (await env.store.get_run(started.id)).status.value == "failed"  # type: ignore[union-attr]
    broken["on"] = False
    await engine.control(started.id, Action.RETRY)
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    final = await env.store.get_run(started.id)
    assert final is not None and final.status.value == "succeeded"
    assert len(final.steps["drafts"].outputs or []) == 5 and len(final.steps) == 7


async def test_a_for_each_step_running_its_items_cannot_be_claimed_again(env: Env) -> None:
    queue = InProcessQueue()
    engine = Engine(env.store, queue, RecordingProvider())
    plan = parse_workflow(MAP)
    run = await engine.start(plan, resolve_inputs(plan.workflow, {}), owner_id=env.owner)
    assert await engine.process(queue._queue.get_nowait()) is True  # expands
    assert await env.store.claim(run.id, "drafts", 0.0) is None  # a duplicate message, or a late sweep
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    events = await env.store.events(run.id)
    assert [e.type for e in events].count("step.expanded") == 1
