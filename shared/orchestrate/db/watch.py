"""One shared poller per process for everyone waiting on runs' events.

Behind Supabase's transaction pooler there is no LISTEN/NOTIFY, so waiting means
polling, and a poll per watcher costs the database a transaction per watcher per tick.
Here one query per tick reads the last event number of every watched run
(``runs.last_seq``, bumped in the transaction that appends the events) and wakes only
the watchers whose run moved; each then reads its events once. The load is one query
per tick whatever the number of watchers, and none while nobody watches."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

from .connect import connection_lost
from .store import PostgresStore

log = logging.getLogger("orchestrate.watch")

TICK = 0.1  # seconds between polls: the worst added latency from an event to its watchers
RETRY = 1.0  # seconds between polls while the database is unreachable


@dataclass(eq=False)
class _Waiter:
    after: int
    woken: asyncio.Future[None] = field(repr=False)


class RunWatch:
    """``await watch.wait(run_id, after, timeout)`` returns once the run has an event
    after ``after`` (True) or when ``timeout`` passes (False). The caller must already
    know the run is its own: the poller reads as the service role."""

    def __init__(self, store: PostgresStore, *, tick: float = TICK) -> None:
        self.store = store
        self.tick = tick
        self.polls = 0  # queries made so far: the tests and the benchmark count them
        self._waiters: dict[str, set[_Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.stopped = False  # set by ``stop``: every wait returns at once

    @property
    def watching(self) -> int:
        """How many waits are in progress."""
        return sum(len(group) for group in self._waiters.values())

    async def wait(self, run_id: str, after: int, timeout: float) -> bool:
        if timeout <= 0 or self.stopped:
            return False
        key = str(uuid.UUID(run_id))  # the form the poll returns
        loop = asyncio.get_running_loop()
        waiter = _Waiter(after, loop.create_future())
        self._waiters.setdefault(key, set()).add(waiter)
        self._ensure_polling(loop)
        try:
            done, _ = await asyncio.wait([waiter.woken], timeout=timeout)
            return bool(done)
        finally:
            group = self._waiters.get(key)
            if group is not None:
                group.discard(waiter)
                if not group:
                    del self._waiters[key]

    def stop(self) -> None:
        """Release every wait now and refuse new ones: the server is shutting down and
        should not wait for idle streams to time out."""
        self.stopped = True
        for group in self._waiters.values():
            for waiter in group:
                if not waiter.woken.done():
                    waiter.woken.set_result(None)

    async def close(self) -> None:
        self.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _ensure_polling(self, loop: asyncio.AbstractEventLoop) -> None:
        # The task ends when the last waiter leaves (no poll while nobody watches); the
        # check and the end happen in one step of the loop, so no waiter is missed.
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._poll_while_watched(), name="orchestrate-event-watch")

    async def _poll_while_watched(self) -> None:
        while self._waiters:
            await asyncio.sleep(self.tick)
            if not self._waiters:
                return
            run_ids = list(self._waiters)
            try:
                self._wake(run_ids, await self._last_seqs(run_ids))
            except Exception as exc:
                reason = connection_lost(exc)
                if reason is None:
                    log.exception("event watch: poll failed; retrying in %.0fs", RETRY)
                elif not self._failing:  # one line per outage, not one per tick
                    log.warning("event watch: %s; watchers wait, retrying every %.0fs", reason, RETRY)
                self._failing = True
                await asyncio.sleep(RETRY)
                continue
            if self._failing:
                log.info("event watch: database reachable again")
                self._failing = False

    async def _last_seqs(self, run_ids: list[str]) -> dict[str, int]:
        self.polls += 1
        async with self.store.pool.connection() as conn:
            cur = await conn.execute("select id::text, last_seq from public.runs where id = any(%s::uuid[])", (run_ids,))
            rows = await cur.fetchall()
        return {run_id: last for run_id, last in rows}

    def _wake(self, run_ids: list[str], last_seqs: dict[str, int]) -> None:
        # Only the runs polled: a waiter that came during the query waits for the next.
        for run_id in run_ids:
            last = last_seqs.get(run_id)
            for waiter in self._waiters.get(run_id, ()):
                # A run gone since the wait began counts as moved: the caller's read finds out.
                if (last is None or last > waiter.after) and not waiter.woken.done():
                    waiter.woken.set_result(None)
