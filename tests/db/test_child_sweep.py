"""A process that dies between a child run's end and its parent's update loses
nothing: the sweeper resolves the parent's waiting step, and cancels the children of
a parent that ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from orchestrate.db.store import PostgresStore
from orchestrate.db.sweeper import settle_families
from orchestrate.db.workflows import Workflows
from orchestrate.engine.core import Engine
from orchestrate.engine.decide import Action
from orchestrate.engine.kinds.workflow import execute
from orchestrate.engine.queue import InProcessQueue, consume
from orchestrate.engine.records import RunState, RunStatus, StepStatus
from orchestrate.engine.store import Claim, Park
from orchestrate.llm import MockProvider
from orchestrate.spec import dump_spec, parse_workflow

CHILD = "name: child\nsteps:\n  - {id: a, prompt: hi}\n"
PARENT = "name: parent\nsteps:\n  - {id: sub, workflow: {name: child}}\n  - {id: after, prompt: 'got {{ sub }}'}\n"


class Forgetful(Engine):
    """An engine whose process dies right after each run's end (before settling it)."""

    async def settle(self, run_id: str) -> None:
        return None


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_url, max_size=4)
    yield store
    await store.close()


async def until(store: PostgresStore, run_id: str, done: Callable[[RunState], bool]) -> RunState:
    for _ in range(500):
        run = await store.get_run(run_id)
        assert run is not None
        if done(run):
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id}: {run.status}")


async def test_the_sweeper_settles_what_a_dead_process_left(store: PostgresStore, make_user: Callable[..., str]) -> None:
    owner, workflows = make_user(), Workflows(store)
    plan = parse_workflow(CHILD)
    await workflows.create(owner, name="child", description="", source=CHILD, spec=dump_spec(plan))
    queue = InProcessQueue()
    dying = Forgetful(store, queue, MockProvider(0.0), library=workflows)
    worker = asyncio.create_task(consume(queue, dying.process))
    try:
        parent = await dying.start(parse_workflow(PARENT), {}, owner_id=owner)
        waiting = await until(store, parent.id, lambda r: r.steps["sub"].status is StepStatus.WAITING)
        child_id = waiting.steps["sub"].child_run_id
        assert child_id is not None
        await until(store, child_id, lambda r: r.status.finished)
        await asyncio.sleep(0.1)
        assert (await until(store, parent.id, lambda r: True)).steps["sub"].status is StepStatus.WAITING  # nobody told it
        assert child_id in await store.ended_children()

        engine = Engine(store, queue, MockProvider(0.0), library=workflows)
        assert await settle_families(engine, store) >= 1
        done = await until(store, parent.id, lambda r: r.status.finished)
        assert done.status is RunStatus.SUCCEEDED and done.steps["after"].status is StepStatus.SUCCEEDED

        # a parent cancelled by a process that died before cancelling its child
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        second = await dying.start(parse_workflow(PARENT), {}, owner_id=owner)
        claim = await store.claim(second.id, "sub", 60)
        assert isinstance(claim, Claim)
        parked = await execute(dying, dying.plan_for(claim.run), claim)  # starts the child (its messages go nowhere now)
        assert isinstance(parked, Park) and await store.complete(claim, parked) is not None
        await dying.control(second.id, Action.CANCEL)
        orphan = str(parked.info["run_id"])
        assert (await until(store, orphan, lambda r: True)).status is RunStatus.QUEUED
        assert second.id in await store.ended_children()
        await settle_families(engine, store)
        assert (await until(store, orphan, lambda r: True)).status is RunStatus.CANCELLED
        assert second.id not in await store.ended_children()
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
