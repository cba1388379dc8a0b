"""The sweeper, run on a schedule: re-drives what is stuck. Safe to run anywhere,
any number of times: a wake-up for a step that needs none is acknowledged."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from ..engine.queue import Queue
from ..engine.records import StepMessage
from .store import PostgresStore

if TYPE_CHECKING:
    from ..engine.core import Engine

DEFAULT_GRACE = 60.0  # seconds a queued step may wait for its message before a new one


@dataclass(frozen=True)
class SweepReport:
    requeued: int
    steps: tuple[StepMessage, ...] = ()  # what was re-enqueued

    def to_dict(self) -> dict[str, int]:
        return {"requeued": self.requeued}


async def rearm_waits(store: PostgresStore, queue: Queue, *, limit: int = 1000) -> int:
    """Send the wake-ups of timed waits again, each delayed to its time (at most 15
    minutes: a longer wait re-arms when it arrives). For a process whose in-process
    queue held them when it stopped; a duplicate wake-up is harmless."""
    from ..engine.core import MAX_WAKE_DELAY
    from ..engine.records import now

    waits = await store.timed_waits(limit)
    at = now()
    for message, until in waits:
        await queue.send([message], min(max((until - at).total_seconds(), 0.0), MAX_WAKE_DELAY))
    return len(waits)


async def sweep(store: PostgresStore, queue: Queue, *, grace_seconds: float = DEFAULT_GRACE, limit: int = 1000) -> SweepReport:
    """Re-enqueue steps queued too long ago (a lost or long-delayed message) and steps
    whose lease lapsed (a crashed invocation)."""
    messages = await store.stuck_steps(grace_seconds, limit)
    await queue.send(messages)
    return SweepReport(len(messages), tuple(messages))


async def settle_families(engine: Engine, store: PostgresStore, *, limit: int = 100) -> int:
    """Finish what a process that died between a run's end and its family's update left:
    a parent step still waiting for a child run that ended, children of a run that ended
    still going (see ``Engine.settle``). Returns how many runs it settled."""
    runs = await store.ended_children(limit)
    for run_id in runs:
        await engine.settle(run_id)
    return len(runs)
