"""The Queue interface and the in-process queue. A message is only a wake-up;
the store decides whether there is anything to do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from .records import StepMessage


class Queue(Protocol):
    async def send(self, messages: Sequence[StepMessage], delay: float = 0.0) -> None: ...


class InProcessQueue:
    """An asyncio queue with delayed delivery, for local runs."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[StepMessage] = asyncio.Queue()
        self._timers: set[asyncio.TimerHandle] = set()

    async def send(self, messages: Sequence[StepMessage], delay: float = 0.0) -> None:
        for message in messages:
            if delay > 0:
                handle = asyncio.get_running_loop().call_later(delay, self._deliver, message)
                self._timers.add(handle)
            else:
                self._queue.put_nowait(message)

    def _deliver(self, message: StepMessage) -> None:
        self._timers = {t for t in self._timers if not t.cancelled() and t.when() > asyncio.get_running_loop().time()}
        self._queue.put_nowait(message)

    async def receive(self) -> StepMessage:
        return await self._queue.get()

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()


async def consume(queue: InProcessQueue, handle: Callable[[StepMessage], Awaitable[object]], concurrency: int = 64) -> None:
    """Hand each message to ``handle`` in its own task, at most ``concurrency`` at once,
    as Lambda would with one invocation per message. Runs until cancelled."""
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def run(message: StepMessage) -> None:
        try:
            await handle(message)
        finally:
            slots.release()

    try:
        while True:
            message = await queue.receive()
            await slots.acquire()
            task = asyncio.create_task(run(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
