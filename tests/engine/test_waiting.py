"""The waiting primitive on every store: a parked step frees its slot, wakes when its
time comes (a NotDue claim before), and is ended once by ``resolve``."""

from __future__ import annotations

import datetime as dt

from orchestrate.engine.core import Engine
from orchestrate.engine.decide import Action
from orchestrate.engine.queue import InProcessQueue
from orchestrate.engine.records import ErrorInfo, RunState, StepStatus, Usage, now
from orchestrate.engine.store import Claim, Failure, NotDue, Park, Success
from orchestrate.spec import parse_workflow
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider

# a and b start at once; c needs a. With a cap of 1, b is held until a parks.
WIDE = "name: w\nsteps:\n  - {id: a, prompt: one}\n  - {id: b, prompt: two}\n  - {id: c, prompt: 'three {{ a }}'}\n"


async def _started(env: Env, cap: int = 50) -> tuple[Engine, RunState]:
    engine = Engine(env.store, InProcessQueue(), RecordingProvider(), max_in_flight=cap)
    run = await engine.start(parse_workflow(WIDE), {}, owner_id=env.owner)
    return engine, run


async def _claim(env: Env, run_id: str, step_id: str) -> Claim:
    claim = await env.store.claim(run_id, step_id, 60)
    assert isinstance(claim, Claim), claim
    return claim


def _ok(text: str) -> Success:
    return Success("", text, None, "", Usage(), 0)


async def test_a_parked_step_frees_its_slot_and_resolve_ends_it_once(env: Env) -> None:
    engine, run = await _started(env, cap=1)
    claim = await _claim(env, run.id, "a")
    applied = await env.store.complete(claim, Park(None, {"kind": "approval", "message": "ok?"}))
    assert applied is not None and applied.queued == ["b"]  # the held step takes a's slot
    state = await env.store.get_run(run.id)
    assert state is not None and state.steps["a"].status is StepStatus.WAITING
    assert state.steps["a"].to_dict()["waiting"] == {"kind": "approval", "message": "ok?"}
    assert state.status.value == "running"
    assert await env.store.claim(run.id, "a", 60) is None  # no time to wake at: only resolve ends it

    first = await env.store.resolve(run.id, "a", _ok("yes"), user_id=env.owner)
    assert first is not None and first.queued == []  # c is queued, held behind b (cap 1)
    assert await env.store.resolve(run.id, "a", _ok("again"), user_id=env.owner) is None
    state = await env.store.get_run(run.id)
    assert state is not None and state.steps["a"].status is StepStatus.SUCCEEDED and state.steps["a"].output == "yes"
    assert state.steps["a"].to_dict()["waiting"] is None and state.steps["c"].status is StepStatus.QUEUED
    types = [e.type for e in await env.store.events(run.id)]
    assert types.count("step.waiting") == 1 and types.count("step.succeeded") == 1


async def test_a_wait_not_yet_due_is_not_claimed_and_a_failure_resolving_it_fails_the_run(env: Env) -> None:
    engine, run = await _started(env)
    later = now() + dt.timedelta(hours=1)
    await env.store.complete(await _claim(env, run.id, "a"), Park(later, {"kind": "wait"}))
    not_due = await env.store.claim(run.id, "a", 60)
    assert isinstance(not_due, NotDue) and abs((not_due.until - later).total_seconds()) < 1
    # The service (no user) may end any run's wait, as a child run's end does.
    assert await env.store.resolve(run.id, "a", Failure(ErrorInfo("child-failed", "the child failed", "a"))) is not None
    state = await env.store.get_run(run.id)
    assert state is not None and state.status.value == "failed" and state.steps["c"].status is StepStatus.CANCELLED
    assert state.steps["a"].error is not None and state.steps["a"].error.type == "child-failed"


async def test_a_due_wait_is_claimed_woken_and_finishes_the_run(env: Env) -> None:
    engine, run = await _started(env)
    await env.store.complete(await _claim(env, run.id, "a"), Park(now() - dt.timedelta(seconds=1), {"kind": "wait"}))
    claim = await _claim(env, run.id, "a")
    assert claim.woken and claim.attempt == 2
    await env.store.complete(claim, _ok("woke"))
    await env.store.complete(await _claim(env, run.id, "b"), _ok("b"))
    await env.store.complete(await _claim(env, run.id, "c"), _ok("c"))
    state = await env.store.get_run(run.id)
    assert state is not None and state.status.value == "succeeded" and state.steps["a"].output == "woke"
    started = [e.data for e in await env.store.events(run.id) if e.type == "step.started" and e.step_id == "a"]
    assert started == [{"attempt": 1}, {"attempt": 2, "woken": True}]


async def test_cancel_cancels_a_waiting_step_and_resolve_then_finds_nothing(env: Env) -> None:
    engine, run = await _started(env)
    await env.store.complete(await _claim(env, run.id, "a"), Park(None, {"kind": "approval"}))
    cancelled = await engine.control(run.id, Action.CANCEL)
    assert cancelled.steps["a"].status is StepStatus.CANCELLED and cancelled.steps["a"].to_dict()["waiting"] is None
    assert await env.store.resolve(run.id, "a", _ok("late")) is None


async def test_another_users_resolve_finds_nothing(env: Env) -> None:
    engine, run = await _started(env)
    await env.store.complete(await _claim(env, run.id, "a"), Park(None, {"kind": "approval"}))
    stranger = "00000000-0000-4000-8000-000000000001"
    assert await env.store.resolve(run.id, "a", _ok("mine"), user_id=stranger) is None
    state = await env.store.get_run(run.id)
    assert state is not None and state.steps["a"].status is StepStatus.WAITING


async def test_a_paused_runs_waiting_step_can_be_answered_and_its_dependants_wait_for_resume(env: Env) -> None:
    queue = InProcessQueue()
    engine = Engine(env.store, queue, RecordingProvider())
    run = await engine.start(parse_workflow(WIDE), {}, owner_id=env.owner)
    await env.store.complete(await _claim(env, run.id, "a"), Park(None, {"kind": "approval"}))
    await engine.control(run.id, Action.PAUSE)
    assert await engine.resolve(run.id, "a", _ok("yes"), user_id=env.owner) is not None
    state = await env.store.get_run(run.id)
    assert state is not None and state.status.value == "paused" and state.steps["c"].status is StepStatus.QUEUED
    while not queue._queue.empty():
        queue._queue.get_nowait()
    await engine.control(run.id, Action.RESUME)
    sent = set()
    while not queue._queue.empty():
        sent.add(queue._queue.get_nowait().step_id)
    assert "c" in sent
