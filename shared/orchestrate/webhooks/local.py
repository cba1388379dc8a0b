"""Webhooks without a queue (``orchestrate serve``): deliver right away in the
background; the sweeper retries what fails."""

from __future__ import annotations

import asyncio
import logging

from ..db.store import PostgresStore
from .deliveries import deliver, deliver_due, deliveries_of_run

log = logging.getLogger("orchestrate.webhooks")


class InlineWebhooks:
    def __init__(self, store: PostgresStore, *, allow_private: bool = False) -> None:
        self.store = store
        self.allow_private = allow_private
        self._tasks: set[asyncio.Task[None]] = set()

    async def run_finished(self, run_id: str) -> None:
        task = asyncio.create_task(self._deliver_run(run_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_run(self, run_id: str) -> None:
        try:
            for delivery_id in await deliveries_of_run(self.store, run_id):
                await self.deliver(delivery_id)
        except Exception:  # a failed attempt stays pending: the sweeper retries it
            log.exception("webhook delivery for run %s failed", run_id)

    async def deliver(self, delivery_id: str) -> None:
        result = await deliver(self.store, delivery_id, allow_private=self.allow_private)
        log.info("webhook %s: %s", delivery_id, result.status)

    async def sweep(self, *, budget: float | None = None) -> None:
        """Send what is due (retries, lapsed leases), in turns across owners."""
        results = await deliver_due(self.store, allow_private=self.allow_private, budget=budget)
        done = [r for r in results if r.status != "skipped"]
        if done:
            log.info("webhook sweep: %d attempted, %d succeeded", len(done), sum(r.status == "succeeded" for r in done))

    async def drain(self) -> None:
        """Wait for deliveries in flight (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
