"""Run a workflow in this process: memory store, in-process queue, the same protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..llm.base import Provider
from ..spec import Plan
from ..vault import Secrets
from .core import Engine
from .kinds import approval
from .kinds.http import HttpPolicy
from .memory import MemoryStore
from .queue import InProcessQueue, consume
from .records import DEFAULT_MAX_IN_FLIGHT, Event, Mode, RunState
from .store import Store

async def run_local(
    plan: Plan,
    inputs: Mapping[str, Any],
    provider: Provider,
    *,
    on_event: Callable[[Event], None] | None = None,
    default_model: str = "gpt-4o",
    concurrency: int = 64,
    store: Store | None = None,
    owner_id: str | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    secrets: Secrets | None = None,
    http: HttpPolicy = HttpPolicy(),
    answer: Callable[[Event], Awaitable[approval.Decision | None]] | None = None,
) -> RunState:
    """Run ``plan`` to the end and return the finished run. ``inputs`` must already be
    resolved (``orchestrate.spec.resolve_inputs``). The store defaults to memory.
    ``answer`` decides each approval as its ``step.waiting`` event arrives (None: no
    answer, the approval waits for its timeout)."""
    store = store if store is not None else MemoryStore()
    queue = InProcessQueue()
    engine = Engine(store, queue, provider, default_model=default_model, max_in_flight=max_in_flight, secrets=secrets, http=http)
    worker = asyncio.create_task(consume(queue, engine.process, concurrency))
    try:
        run = await engine.start(plan, inputs, mode=Mode.AUTO, owner_id=owner_id)
        seq = 0
        while True:
            events = await store.events(run.id, seq, wait=5.0)
            for event in events:
                seq = event.seq
                if on_event is not None:
                    on_event(event)
                if answer is not None and event.type == "step.waiting" and event.data.get("kind") == "approval" and event.step_id:
                    decision = await answer(event)
                    if decision is not None:
                        await approval.answer(engine, run.id, event.step_id, fields=decision.fields, reason=decision.reason)
            if events and events[-1].type in ("run.succeeded", "run.failed", "run.cancelled"):
                break
            if worker.done():
                worker.result()  # surfaces a crashed worker instead of waiting forever
    finally:
        worker.cancel()
        queue.close()
        await asyncio.gather(worker, return_exceptions=True)
    final = await store.get_run(run.id)
    assert final is not None
    return final
