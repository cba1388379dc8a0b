"""Throughput of the durable engine: 100 concurrent 10-step runs (Postgres store,
in-process queue, mock model at 0 s), in steps per second. Prints a table, then
one JSON line.

    python bench/throughput.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import bench_database, create_user  # noqa: E402

from orchestrate import MockProvider, parse_workflow  # noqa: E402
from orchestrate.db.store import PostgresStore  # noqa: E402
from orchestrate.engine.core import Engine  # noqa: E402
from orchestrate.engine.queue import InProcessQueue, consume  # noqa: E402

RUNS, STEPS, CONCURRENCY = 100, 10, 32


def workflow() -> str:
    # a fan-out of 8 between a first and a last step: 10 steps
    middle = [f"  - {{id: m{i}, prompt: 'part {i} {{{{ first }}}}'}}" for i in range(STEPS - 2)]
    last = "  - {id: last, prompt: 'join', needs: [" + ", ".join(f"m{i}" for i in range(STEPS - 2)) + "]}"
    return "name: ten\nsteps:\n  - {id: first, prompt: go}\n" + "\n".join(middle) + "\n" + last + "\n"


async def main() -> None:
    async with bench_database() as (direct, _proxied, _counter):
        owner = create_user(direct)
        store = await PostgresStore.open(direct, min_size=CONCURRENCY, max_size=CONCURRENCY)
        plan = parse_workflow(workflow())
        queue = InProcessQueue()
        engine = Engine(store, queue, MockProvider(0.0))
        worker = asyncio.create_task(consume(queue, engine.process, CONCURRENCY))
        started = time.perf_counter()
        runs = await asyncio.gather(*(engine.start(plan, {}, owner_id=owner) for _ in range(RUNS)))
        pending = {r.id for r in runs}
        while pending:
            await asyncio.sleep(0.05)
            async with store.transaction() as conn:
                cur = await conn.execute("select id::text from public.runs where id = any(%s) and status not in ('succeeded','failed','cancelled')", (list(pending),))
                pending = {row[0] for row in await cur.fetchall()}
        elapsed = time.perf_counter() - started
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        async with store.transaction() as conn:
            cur = await conn.execute("select status, count(*) from public.runs where id = any(%s) group by status", ([r.id for r in runs],))
            statuses = dict(await cur.fetchall())
        await store.close()
    assert statuses == {"succeeded": RUNS}, statuses
    steps_per_s = RUNS * STEPS / elapsed
    print(f"{'durable throughput (Postgres, in-process queue, mock 0 s)':<58} {'figure':>12}")
    print(f"{f'{RUNS} concurrent {STEPS}-step runs, {CONCURRENCY} workers':<58} {elapsed:>10.2f} s")
    print(f"{'steps per second':<58} {steps_per_s:>12.0f}")
    print(f"{'runs per second':<58} {RUNS / elapsed:>12.1f}")
    print(json.dumps({"bench": "throughput", "runs": RUNS, "steps": RUNS * STEPS, "seconds": round(elapsed, 3), "steps_per_s": round(steps_per_s, 1)}))


if __name__ == "__main__":
    asyncio.run(main())
