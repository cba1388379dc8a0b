"""The sweeper re-drives what is stuck: lost messages, lapsed leases, held steps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from orchestrate.db.store import PostgresStore
from orchestrate.db.sweeper import sweep
from orchestrate.engine.core import Engine
from orchestrate.engine.queue import InProcessQueue
from orchestrate.engine.records import StepMessage
from orchestrate.llm import MockProvider
from orchestrate.spec import parse_workflow

WIDE = "name: w\nconversation: false\nsteps:\n" + "\n".join(f"  - {{id: s{i}, prompt: 'task {i}'}}" for i in range(4)) + "\n"


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_url, max_size=4)
    yield store
    await store.close()


def sent(queue: InProcessQueue, run_id: str) -> list[str]:
    """The steps of ``run_id`` sent (the database holds other tests' runs too)."""
    out = []
    while not queue._queue.empty():
        message = queue._queue.get_nowait()
        out += [message.step_id] if message.run_id == run_id else []
    return sorted(out)


async def test_lost_messages_and_lapsed_leases_are_sent_again_held_steps_are_not(store: PostgresStore, make_user: Callable[..., str]) -> None:
    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider(0.0), max_in_flight=2)
    run = await engine.start(parse_workflow(WIDE), {}, owner_id=make_user())
    assert sent(queue, run.id) == ["s0", "s1"]  # ... and the messages are lost
    assert await store.claim(run.id, "s0", 0.0) is not None  # its invocation dies: the lease lapses at once
    report = await sweep(store, queue, grace_seconds=0.0)
    assert report.requeued >= 2 and sent(queue, run.id) == ["s0", "s1"]  # s2, s3 stay held: the cap is full (the count: every run here)
    await sweep(store, queue, grace_seconds=60.0)
    assert sent(queue, run.id) == ["s0"]  # s1 was just re-sent: it waits another grace; s0's lease is still lapsed


async def test_held_steps_are_released_when_the_run_has_room(store: PostgresStore, make_user: Callable[..., str]) -> None:
    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider(0.0), max_in_flight=2)
    run = await engine.start(parse_workflow(WIDE), {}, owner_id=make_user())
    sent(queue, run.id)
    async with store.pool.connection() as conn:  # an operator raises the cap of a running run
        await conn.execute("update public.runs set max_in_flight = 10 where id = %s", (run.id,))
    await sweep(store, queue, grace_seconds=60.0)
    assert sent(queue, run.id) == ["s2", "s3"]
    for step in ("s0", "s1", "s2", "s3"):
        assert await engine.process(StepMessage(run.id, step)) is True
    final = await store.get_run(run.id)
    assert final is not None and final.status.value == "succeeded"



async def test_a_waiting_step_is_re_driven_once_due_and_not_before(store: PostgresStore, make_user: Callable[..., str]) -> None:
    import datetime as dt

    from orchestrate.engine.records import now
    from orchestrate.engine.store import Claim, Park

    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider(0.0))
    run = await engine.start(parse_workflow(WIDE), {}, owner_id=make_user())
    sent(queue, run.id)
    for step, until in (("s0", now() - dt.timedelta(seconds=1)), ("s1", now() + dt.timedelta(hours=1)), ("s2", None)):
        claim = await store.claim(run.id, step, 60)
        assert isinstance(claim, Claim)
        await store.complete(claim, Park(until, {"kind": "wait"}))
    await sweep(store, queue, grace_seconds=0.0)  # a restart: s0's wake-up was in the lost queue
    assert sent(queue, run.id) == ["s0", "s3"]  # s1 is not due, s2 waits for an answer only
    await sweep(store, queue, grace_seconds=60.0)
    assert sent(queue, run.id) == []  # just re-sent: it waits another grace
