"""Pause, resume, step-by-step mode, cancel and retry, on every store."""

from __future__ import annotations

import pytest

from orchestrate.engine.core import Engine
from orchestrate.engine.decide import Action
from orchestrate.engine.queue import InProcessQueue
from orchestrate.engine.records import Mode, RunState, RunStatus, StepMessage, Usage
from orchestrate.engine.store import Success
from orchestrate.errors import ConflictError, NotFound, ProviderAuthError
from orchestrate.llm import ChatRequest
from orchestrate.spec import parse_workflow
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider

CHAIN = "name: c\nsteps:\n  - {id: a, prompt: one}\n  - {id: b, prompt: 'two {{ a }}'}\n  - {id: c, prompt: 'three {{ b }}'}\n"


async def drain(engine: Engine, queue: InProcessQueue) -> int:
    """Deliver every queued message (as a worker would); return how many claimed a step."""
    claimed = 0
    while not queue._queue.empty():
        claimed += await engine.process(queue._queue.get_nowait())
    return claimed


def statuses(run: RunState) -> dict[str, str]:
    return {sid: s.status.value for sid, s in run.steps.items()}


async def start(env: Env, provider: RecordingProvider, mode: Mode = Mode.AUTO) -> tuple[Engine, InProcessQueue, RunState]:
    queue = InProcessQueue()
    engine = Engine(env.store, queue, provider)
    run = await engine.start(parse_workflow(CHAIN), {}, owner_id=env.owner, mode=mode)
    return engine, queue, run


async def test_pause_holds_queued_steps_and_resume_continues(env: Env) -> None:
    provider = RecordingProvider()
    engine, queue, run = await start(env, provider)
    paused = await engine.control(run.id, Action.PAUSE)
    assert paused.status is RunStatus.PAUSED
    assert await drain(engine, queue) == 0  # the message arrives, the claim refuses
    assert provider.requests == []
    assert statuses(paused)["a"] == "queued"
    resumed = await engine.control(run.id, Action.RESUME)
    assert resumed.status is RunStatus.RUNNING
    assert await drain(engine, queue) == 3
    final = await env.store.get_run(run.id)
    assert final is not None and final.status is RunStatus.SUCCEEDED and len(provider.requests) == 3
    types = [e.type for e in await env.store.events(run.id)]
    assert "run.paused" in types and "run.resumed" in types


async def test_cancel_stops_the_run_and_discards_a_late_result(env: Env) -> None:
    provider = RecordingProvider()
    engine, queue, run = await start(env, provider)
    await engine.process(queue._queue.get_nowait())  # a succeeds, b is queued
    claim = await env.store.claim(run.id, "b", 60)  # b is being executed...
    assert claim is not None
    cancelled = await engine.control(run.id, Action.CANCEL)
    assert cancelled.status is RunStatus.CANCELLED
    assert statuses(cancelled) == {"a": "succeeded", "b": "cancelled", "c": "cancelled"}

    late = Success("p", "late answer", None, "m", Usage(1, 1), 1)
    assert await env.store.complete(claim, late) is None
    final = await env.store.get_run(run.id)
    assert final is not None and final.steps["b"].output is None and final.status is RunStatus.CANCELLED
    assert final.steps["c"].status.value == "cancelled"
    events = await env.store.events(run.id)
    assert [e.type for e in events].count("run.cancelled") == 1
    with pytest.raises(ConflictError, match="cannot resume a run that is cancelled"):
        await engine.control(run.id, Action.RESUME)


async def test_step_mode_runs_one_step_per_step_command(env: Env) -> None:
    provider = RecordingProvider()
    engine, queue, run = await start(env, provider, Mode.STEP)
    assert await drain(engine, queue) == 1
    run_after = await env.store.get_run(run.id)
    assert run_after is not None and run_after.status is RunStatus.PAUSED
    assert statuses(run_after) == {"a": "succeeded", "b": "queued", "c": "pending"}
    await queue.send([StepMessage(run.id, "b")])  # a stray duplicate cannot sneak past the pause
    assert await drain(engine, queue) == 0
    for expected in ("b", "c"):
        stepped = await engine.control(run.id, Action.STEP)
        assert stepped.status is RunStatus.RUNNING
        assert await drain(engine, queue) == 1
        assert (await env.store.get_run(run.id)).steps[expected].status.value == "succeeded"  # type: ignore[union-attr]
    final = await env.store.get_run(run.id)
    assert final is not None and final.status is RunStatus.SUCCEEDED and len(provider.requests) == 3
    with pytest.raises(ConflictError):
        await engine.control(run.id, Action.STEP)


async def test_retry_reruns_only_the_failed_steps(env: Env) -> None:
    broken = {"on": True}

    def fail(request: ChatRequest, nth: int) -> None:
        if broken["on"] and request.messages[-1]["content"].startswith("two"):
            raise ProviderAuthError("bad key")

    provider = RecordingProvider(fail=fail)
    engine, queue, run = await start(env, provider)
    await drain(engine, queue)
    failed = await env.store.get_run(run.id)
    assert failed is not None and failed.status is RunStatus.FAILED
    assert statuses(failed) == {"a": "succeeded", "b": "failed", "c": "cancelled"}
    broken["on"] = False
    retried = await engine.control(run.id, Action.RETRY)
    assert retried.status is RunStatus.RUNNING and retried.error is None
    assert await drain(engine, queue) == 2
    final = await env.store.get_run(run.id)
    assert final is not None and final.status is RunStatus.SUCCEEDED
    assert [r.messages[-1]["content"][:3] for r in provider.requests] == ["one", "two", "two", "thr"]
    assert final.steps["b"].attempt == 2


async def test_controls_refuse_what_the_state_does_not_allow(env: Env) -> None:
    engine, queue, run = await start(env, RecordingProvider())
    with pytest.raises(ConflictError, match="only a run in step mode"):
        await engine.control(run.id, Action.STEP)
    with pytest.raises(ConflictError, match="cannot retry"):
        await engine.control(run.id, Action.RETRY)
    with pytest.raises(ConflictError, match="cannot resume"):
        await engine.control(run.id, Action.RESUME)
    with pytest.raises(NotFound):
        await engine.control("00000000-0000-0000-0000-000000000000", Action.PAUSE)


async def test_an_idempotency_key_returns_the_same_run_and_refuses_another_request(env: Env) -> None:
    provider = RecordingProvider()
    queue = InProcessQueue()
    engine = Engine(env.store, queue, provider)
    plan = parse_workflow(CHAIN)
    first = await engine.start(plan, {}, owner_id=env.owner, idempotency_key="k1", request_hash="h1")
    again = await engine.start(plan, {}, owner_id=env.owner, idempotency_key="k1", request_hash="h1")
    assert again.id == first.id
    assert queue._queue.qsize() == 1  # the replay queued nothing more
    with pytest.raises(ConflictError, match="different request"):
        await engine.start(plan, {}, owner_id=env.owner, idempotency_key="k1", request_hash="h2")
    other = await engine.start(plan, {}, owner_id=env.owner, idempotency_key="k2", request_hash="h1")
    assert other.id != first.id


async def test_step_mode_survives_a_transient_retry(env: Env) -> None:
    from orchestrate.errors import ProviderTransient

    def flaky(request: ChatRequest, nth: int) -> None:
        if request.messages[-1]["content"] == "one" and nth == 1:
            raise ProviderTransient("503", retry_after=999)  # too long to wait in-call: the step is retried

    text = "name: c\nsteps:\n  - {id: a, prompt: one, retry: {initial_delay: 0}}\n  - {id: b, prompt: 'two {{ a }}'}\n"
    queue = InProcessQueue()
    engine = Engine(env.store, queue, RecordingProvider(fail=flaky))
    run = await engine.start(parse_workflow(text), {}, owner_id=env.owner, mode=Mode.STEP)
    await drain(engine, queue)  # a fails transiently, is re-queued, and its retry is claimed without new budget
    paused = await env.store.get_run(run.id)
    assert paused is not None and paused.status is RunStatus.PAUSED
    assert statuses(paused) == {"a": "succeeded", "b": "queued"} and paused.steps["a"].attempt == 2


async def test_a_step_whose_invocations_keep_dying_is_abandoned(env: Env) -> None:
    provider = RecordingProvider()
    queue = InProcessQueue()
    engine = Engine(env.store, queue, provider)
    text = "name: c\nsteps:\n  - {id: a, prompt: one, retry: {max_attempts: 2}}\n"
    run = await engine.start(parse_workflow(text), {}, owner_id=env.owner)
    for _ in range(2):  # two invocations claim the step and die: their leases lapse at once
        assert await env.store.claim(run.id, "a", 0.0) is not None
    assert await engine.process(StepMessage(run.id, "a")) is True
    final = await env.store.get_run(run.id)
    assert final is not None and final.status is RunStatus.FAILED
    assert final.error is not None and final.error.type == "step-abandoned" and "2 attempts" in final.error.message
    assert provider.requests == []


async def test_retry_gives_failed_steps_their_attempts_again(env: Env) -> None:
    from orchestrate.errors import ProviderTransient

    broken = {"on": True}

    def fail(request: ChatRequest, nth: int) -> None:
        if broken["on"]:
            raise ProviderTransient("503", retry_after=999)

    text = "name: c\nsteps:\n  - {id: a, prompt: one, retry: {max_attempts: 2, initial_delay: 0}}\n"
    queue = InProcessQueue()
    engine = Engine(env.store, queue, RecordingProvider(fail=fail))
    run = await engine.start(parse_workflow(text), {}, owner_id=env.owner)
    await drain(engine, queue)
    assert (await env.store.get_run(run.id)).status is RunStatus.FAILED  # type: ignore[union-attr]
    await engine.control(run.id, Action.RETRY)
    await drain(engine, queue)  # fails twice more: a fresh budget of 2 attempts, not "gave up after 3"
    final = await env.store.get_run(run.id)
    assert final is not None and final.status is RunStatus.FAILED and final.steps["a"].attempt == 4
    assert final.error is not None and "gave up after 2 attempts" in final.error.message


async def test_resume_sends_refused_messages_again_and_keeps_the_cap(env: Env) -> None:
    provider = RecordingProvider()
    queue = InProcessQueue()
    engine = Engine(env.store, queue, provider, max_in_flight=2)
    steps = "\n".join(f"  - {{id: s{i}, prompt: 'task {i}'}}" for i in range(5))
    run = await engine.start(parse_workflow(f"name: w\nconversation: false\nsteps:\n{steps}\n"), {}, owner_id=env.owner)
    assert queue._queue.qsize() == 2  # the cap: three steps wait in the store
    await engine.control(run.id, Action.PAUSE)
    assert await drain(engine, queue) == 0  # refused while paused
    await engine.control(run.id, Action.RESUME)
    assert queue._queue.qsize() == 2  # the two refused messages again, nothing more
    assert await drain(engine, queue) == 5
    final = await env.store.get_run(run.id)
    assert final is not None and final.status is RunStatus.SUCCEEDED and len(provider.requests) == 5
