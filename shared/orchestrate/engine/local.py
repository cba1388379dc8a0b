"""Run a workflow in this process: memory store, in-process queue, the same protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..llm.base import Provider
from ..spec import Plan
from .core import DEFAULT_MAX_WORKFLOW_DEPTH, Engine
from .kinds import approval
from .library import WorkflowLibrary
from .memory import MemoryStore
from .queue import InProcessQueue, consume
from .records import Event, Mode, RunState
from .store import Store

Answer = Callable[[Event], Awaitable["approval.Decision | None"]]


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
    max_in_flight: int = 50,
    library: WorkflowLibrary | None = None,
    max_workflow_depth: int = DEFAULT_MAX_WORKFLOW_DEPTH,
    answer: Answer | None = None,
) -> RunState:
    """Run ``plan`` to the end and return the finished run. ``inputs`` must already be
    resolved (``orchestrate.spec.resolve_inputs``). The store defaults to memory;
    `workflow` steps find their child's workflow in ``library`` and run it here too.
    ``answer`` decides each approval as its ``step.waiting`` event arrives (None: no
    answer, the approval waits for its timeout)."""

    async def start(engine: Engine) -> RunState:
        return await engine.start(plan, inputs, mode=Mode.AUTO, owner_id=owner_id)

    return await _drive(
        start, provider, store, on_event=on_event, default_model=default_model, concurrency=concurrency,
        max_in_flight=max_in_flight, library=library, max_workflow_depth=max_workflow_depth, answer=answer,
    )


async def rerun_local(
    source: RunState,
    from_step: str,
    provider: Provider,
    *,
    plan: Plan | None = None,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    on_event: Callable[[Event], None] | None = None,
    default_model: str = "gpt-4o",
    store: Store | None = None,
    library: WorkflowLibrary | None = None,
    answer: Answer | None = None,
) -> RunState:
    """Rerun the finished ``source`` from ``from_step`` (see ``Engine.rerun``: ``inputs``
    are the changed ones, ``plan`` an edited workflow) to the end; return the new run."""

    async def start(engine: Engine) -> RunState:
        return await engine.rerun(source, from_step, inputs=inputs, outputs=outputs, plan=plan)

    return await _drive(start, provider, store, on_event=on_event, default_model=default_model, library=library, answer=answer)


async def _drive(
    start: Callable[[Engine], Awaitable[RunState]],
    provider: Provider,
    store: Store | None,
    *,
    on_event: Callable[[Event], None] | None,
    default_model: str,
    concurrency: int = 64,
    max_in_flight: int = 50,
    library: WorkflowLibrary | None = None,
    max_workflow_depth: int = DEFAULT_MAX_WORKFLOW_DEPTH,
    answer: Answer | None = None,
) -> RunState:
    store = store if store is not None else MemoryStore()
    queue = InProcessQueue()
    engine = Engine(
        store, queue, provider, default_model=default_model, max_in_flight=max_in_flight, library=library, max_workflow_depth=max_workflow_depth
    )
    worker = asyncio.create_task(consume(queue, engine.process, concurrency))
    try:
        run = await start(engine)
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
