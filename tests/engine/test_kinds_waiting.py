"""Approval and wait steps, and `on_error`, on every store."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from orchestrate.engine.core import Engine
from orchestrate.engine.decide import Action
from orchestrate.engine.kinds import approval
from orchestrate.engine.local import run_local
from orchestrate.engine.queue import InProcessQueue, consume
from orchestrate.engine.records import Event, RunState, StepMessage
from orchestrate.errors import AnswerError, ConflictError, NotFound, ProviderRejected
from orchestrate.llm import ChatRequest
from orchestrate.spec import parse_workflow, resolve_inputs
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider

REVIEW = """name: review
inputs: {topic: {type: string}}
steps:
  - id: draft
    prompt: "Write about {{ inputs.topic }}"
  - id: review
    approval:
      message: "Publish the draft about {{ inputs.topic }}?"
      fields: [{name: ok, type: boolean}, {name: note}]
      {timeout}
    needs: draft
    {on_error}
  - id: publish
    prompt: "Publish with note {{ steps.review.outputs.note }}"
  - id: rewrite
    prompt: "Rewrite"
    needs: review
    when: "steps.review.status == 'failed'"
"""


def review(timeout: str = "", on_error: str = "") -> str:
    return REVIEW.replace("{timeout}", timeout).replace("{on_error}", on_error)


async def run(env: Env, source: str, inputs: dict[str, Any] | None = None, *, answer: Any = None, provider: RecordingProvider | None = None) -> RunState:
    plan = parse_workflow(source)
    resolved = resolve_inputs(plan.workflow, inputs or {})
    return await run_local(plan, resolved, provider or RecordingProvider(), store=env.store, owner_id=env.owner, answer=answer)


def statuses(run: RunState) -> dict[str, str]:
    return {sid: s.status.value for sid, s in run.steps.items()}


class Worker:
    """An engine with a worker task consuming its queue, as `orchestrate serve` has."""

    def __init__(self, env: Env, provider: RecordingProvider | None = None) -> None:
        self.env, self.queue = env, InProcessQueue()
        self.engine = Engine(env.store, self.queue, provider or RecordingProvider())
        self.task = asyncio.create_task(consume(self.queue, self.engine.process))

    async def start(self, source: str, inputs: dict[str, Any] | None = None) -> RunState:
        plan = parse_workflow(source)
        return await self.engine.start(plan, resolve_inputs(plan.workflow, inputs or {}), owner_id=self.env.owner)

    async def until(self, run_id: str, event_type: str, step_id: str | None = None) -> list[Event]:
        async def seen() -> list[Event]:
            while True:
                events = await self.env.store.events(run_id, 0, wait=1.0)
                if any(e.type == event_type and (step_id is None or e.step_id == step_id) for e in events):
                    return events
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(seen(), 20)

    async def close(self) -> None:
        self.task.cancel()
        self.queue.close()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def worker(env: Env) -> Any:
    w = Worker(env)
    yield w
    await w.close()


async def test_an_approval_waits_and_its_fields_flow_downstream(env: Env, worker: Worker) -> None:
    run = await worker.start(review(), {"topic": "tides"})
    events = await worker.until(run.id, "step.waiting", "review")
    waiting = next(e for e in events if e.type == "step.waiting")
    assert waiting.data["message"] == "Publish the draft about tides?"
    assert [f["name"] for f in waiting.data["fields"]] == ["ok", "note"]
    state = await env.store.get_run(run.id)
    assert state is not None and state.status.value == "running" and state.steps["review"].status.value == "waiting"
    assert state.steps["review"].to_dict()["waiting"]["message"] == "Publish the draft about tides?"

    with pytest.raises(AnswerError) as bad:
        await approval.answer(worker.engine, run.id, "review", fields={"ok": "yes", "extra": 1}, user_id=env.owner)
    assert sorted(bad.value.problems) == [
        "field 'extra': unknown",
        "field 'note': required but not given",
        "field 'ok': expected boolean, got a string 'yes'",
    ]
    await approval.answer(worker.engine, run.id, "review", fields={"ok": True, "note": "ship it"}, user_id=env.owner)
    await worker.until(run.id, "run.succeeded")
    final = await env.store.get_run(run.id)
    assert final is not None and statuses(final) == {"draft": "succeeded", "review": "succeeded", "publish": "succeeded", "rewrite": "skipped"}
    assert final.steps["review"].outputs == {"ok": True, "note": "ship it"}
    assert final.steps["publish"].prompt == "Publish with note ship it"
    with pytest.raises(ConflictError, match="not waiting"):
        await approval.answer(worker.engine, run.id, "review", reason="too late", user_id=env.owner)


async def test_a_rejection_fails_the_run_or_with_continue_takes_the_when_branch(env: Env) -> None:
    async def reject(event: Event) -> approval.Decision:
        return approval.Decision(reason="not yet")

    failed = await run(env, review(), {"topic": "t"}, answer=reject)
    assert failed.status.value == "failed" and failed.error is not None and failed.error.type == "approval-rejected"
    assert failed.error.message == "rejected: not yet" and statuses(failed)["rewrite"] == "cancelled"

    went_on = await run(env, review(on_error="on_error: continue"), {"topic": "t"}, answer=reject)
    assert went_on.status.value == "succeeded"
    assert statuses(went_on) == {"draft": "succeeded", "review": "failed", "publish": "skipped", "rewrite": "succeeded"}
    assert went_on.steps["review"].error is not None and went_on.steps["review"].error.type == "approval-rejected"


async def test_an_approval_times_out_rejected_or_with_its_default(env: Env) -> None:
    timed_out = await run(env, review(timeout="timeout: 1", on_error="on_error: continue"), {"topic": "t"})
    assert statuses(timed_out)["review"] == "failed" and statuses(timed_out)["rewrite"] == "succeeded"
    assert timed_out.steps["review"].error is not None and "no answer within 1 seconds" in timed_out.steps["review"].error.message

    defaulted = await run(env, review(timeout="timeout: 1\n      on_timeout: default\n      default: {ok: false, note: auto}"), {"topic": "t"})
    assert defaulted.status.value == "succeeded" and defaulted.steps["review"].outputs == {"ok": False, "note": "auto"}
    assert defaulted.steps["publish"].prompt == "Publish with note auto"


async def test_concurrent_answers_exactly_one_wins(env: Env, worker: Worker) -> None:
    run_ = await worker.start(review(), {"topic": "t"})
    await worker.until(run_.id, "step.waiting", "review")
    results = await asyncio.gather(
        approval.answer(worker.engine, run_.id, "review", fields={"ok": True, "note": "a"}, user_id=env.owner),
        approval.answer(worker.engine, run_.id, "review", reason="b", user_id=env.owner),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ConflictError", "RunState"]
    events = await env.store.events(run_.id)
    assert len([e for e in events if e.step_id == "review" and e.type in ("step.succeeded", "step.failed")]) == 1


async def test_another_users_run_is_not_found(env: Env, worker: Worker) -> None:
    if env.owner is None:
        pytest.skip("memory runs have no owner to tell apart")
    run_ = await worker.start(review(), {"topic": "t"})
    await worker.until(run_.id, "step.waiting", "review")
    with pytest.raises(NotFound):
        await approval.answer(worker.engine, run_.id, "review", fields={"ok": True, "note": "x"}, user_id="00000000-0000-4000-8000-00000000000f")


WAIT = """name: nap
inputs: {when: {type: string, default: ""}}
steps:
  - id: nap
    wait: {wait}
  - id: after
    prompt: "woke at {{ steps.nap.output }}"
"""


async def test_a_wait_parks_and_wakes_with_the_time_it_woke(env: Env) -> None:
    before = dt.datetime.now(dt.UTC)
    final = await run(env, WAIT.replace("{wait}", "{seconds: 1}"))
    assert final.status.value == "succeeded"
    woke = dt.datetime.fromisoformat(final.steps["nap"].output or "")
    assert woke >= before + dt.timedelta(seconds=1)
    types = [e.type for e in await env.store.events(final.id) if e.step_id == "nap"]
    assert types == ["step.queued", "step.started", "step.waiting", "step.started", "step.succeeded"]


async def test_a_wait_until_a_time_past_succeeds_at_once_and_a_bad_time_fails_clearly(env: Env) -> None:
    until = WAIT.replace("{wait}", "{until: '{{ inputs.when }}'}")
    past = await run(env, until, {"when": "2020-01-01T00:00:00Z"})
    assert past.status.value == "succeeded"
    assert "step.waiting" not in [e.type for e in await env.store.events(past.id)]
    naive = await run(env, until, {"when": "2030-01-01T00:00:00"})
    assert naive.error is not None and naive.error.type == "invalid-time"
    assert naive.error.message.startswith("step 'nap' wait.until: `until` needs a timezone")
    garbage = await run(env, until, {"when": "next tuesday"})
    assert garbage.error is not None and "must be an ISO 8601 time" in garbage.error.message


async def test_a_wake_while_paused_waits_for_resume_and_duplicates_claim_once(env: Env, worker: Worker) -> None:
    run_ = await worker.start(WAIT.replace("{wait}", "{seconds: 1}"))
    await worker.until(run_.id, "step.waiting", "nap")
    await worker.engine.control(run_.id, Action.PAUSE, user_id=env.owner)
    await asyncio.sleep(1.2)  # the wake-up arrives while paused: refused
    state = await env.store.get_run(run_.id)
    assert state is not None and state.steps["nap"].status.value == "waiting"
    await worker.engine.control(run_.id, Action.RESUME, user_id=env.owner)
    await worker.until(run_.id, "run.succeeded")
    # Duplicate wake-ups after the fact claim nothing.
    assert await worker.engine.process(StepMessage(run_.id, "nap")) is False
    started = [e for e in await env.store.events(run_.id) if e.type == "step.started" and e.step_id == "nap"]
    assert len(started) == 2


async def test_cancelling_a_run_with_a_waiting_step_cancels_it(env: Env, worker: Worker) -> None:
    run_ = await worker.start(WAIT.replace("{wait}", "{seconds: 30}"))
    await worker.until(run_.id, "step.waiting", "nap")
    cancelled = await worker.engine.control(run_.id, Action.CANCEL, user_id=env.owner)
    assert statuses(cancelled) == {"nap": "cancelled", "after": "cancelled"}
    assert await worker.engine.process(StepMessage(run_.id, "nap")) is False


FLAKY = """name: flaky
steps:
  - id: a
    prompt: "boom"
    retry: {max_attempts: 1}
    {on_error}
  - id: plain
    prompt: "after {{ a }}"
  - id: check
    prompt: "a was {{ steps.a.status }}"
    needs: a
    when: "steps.a.status in ['failed', 'succeeded']"
"""


def boom() -> RecordingProvider:
    def fail(request: ChatRequest, count: int) -> None:
        if request.messages[-1]["content"] == "boom":
            raise ProviderRejected("the model refused")

    return RecordingProvider(fail=fail)


async def test_on_error_continue_and_default(env: Env) -> None:
    went_on = await run(env, FLAKY.replace("{on_error}", "on_error: continue"), provider=boom())
    assert went_on.status.value == "succeeded"
    assert statuses(went_on) == {"a": "failed", "plain": "skipped", "check": "succeeded"}
    assert went_on.steps["check"].prompt == "a was failed"
    failed = [e.data for e in await env.store.events(went_on.id) if e.type == "step.failed"]
    assert failed[0]["on_error"] == "continue"

    source = FLAKY.replace("{on_error}", "outputs: [{name: n, type: integer}]\n    on_error: {default: {n: 0}}").replace("after {{ a }}", "after {{ steps.a.outputs.n }}")
    defaulted = await run(env, source, provider=boom())
    assert defaulted.status.value == "succeeded" and statuses(defaulted)["a"] == "succeeded"
    assert defaulted.steps["a"].outputs == {"n": 0} and defaulted.steps["plain"].prompt == "after 0"
    succeeded = next(e.data for e in await env.store.events(defaulted.id) if e.type == "step.succeeded" and e.step_id == "a")
    assert succeeded["on_error"]["error"]["type"] == "provider-rejected"


EACH = """name: each
steps:
  - id: items
    for_each: "{{ ['ok', 'boom', 'ok2'] }}"
    concurrency: 1
    prompt: "{{ item }}"
    {on_error}
  - id: after
    prompt: "after"
    needs: items
    when: "steps.items.status != 'pending'"
"""


async def test_on_error_on_a_for_each_step(env: Env) -> None:
    went_on = await run(env, EACH.replace("{on_error}", "on_error: continue"), provider=boom())
    assert went_on.status.value == "succeeded"
    assert statuses(went_on) == {"items": "failed", "items[0]": "succeeded", "items[1]": "failed", "items[2]": "cancelled", "after": "succeeded"}
    defaulted = await run(env, EACH.replace("{on_error}", "on_error: {default: none}"), provider=boom())
    assert defaulted.status.value == "succeeded" and defaulted.steps["items"].output == "none"
    assert statuses(defaulted)["items[2]"] == "cancelled"
