"""The scheduled sweeper on the hosted engine: stuck steps back on the step queue,
due webhook deliveries on the webhook queue."""

from __future__ import annotations

from typing import Any

from ..db.store import PostgresStore
from ..db.sweeper import settle_families, sweep
from ..webhooks.deliveries import due_deliveries
from .runtime import Runtime
from .sqs import SqsQueue


async def sweep_once(runtime: Runtime) -> dict[str, Any]:
    engine = await runtime.engine()
    assert isinstance(engine.store, PostgresStore)
    report = await sweep(engine.store, engine.queue)
    settled = await settle_families(engine, engine.store)
    due: list[str] = []
    if isinstance(engine.webhooks, SqsQueue):  # the webhook queue build_engine made
        due = await due_deliveries(engine.store)
        await engine.webhooks.send_bodies([{"delivery_id": d} for d in due])
    return {**report.to_dict(), "webhooks_due": len(due), "runs_settled": settled}
