"""Durable per-step orchestration overhead on Postgres (mock model at 0 s, in-process
queue), beside the floor of one INSERT per step on the same server, with database
round trips per step counted by a proxy. Prints a table, then one JSON line.

    python bench/store_overhead.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import bench_database, create_user  # noqa: E402
from _workflows import chain, fan_out  # noqa: E402

from orchestrate import MockProvider, parse_workflow  # noqa: E402
from orchestrate.db.store import PostgresStore  # noqa: E402
from orchestrate.engine.core import Engine  # noqa: E402
from orchestrate.engine.queue import InProcessQueue  # noqa: E402

STEPS = 200






def insert_floor(conninfo: str, n: int) -> float:
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("create table if not exists bench_floor (id bigserial primary key, run_id uuid, step_id text, output text)")
        started = time.perf_counter()
        for i in range(n):
            conn.execute("insert into bench_floor (run_id, step_id, output) values (gen_random_uuid(), %s, %s)", (f"s{i}", "x" * 40))
        return (time.perf_counter() - started) / n


async def drive(store: PostgresStore, text: str, owner: str) -> tuple[float, int]:
    """Run a workflow by draining the queue in this task: pure protocol cost per step."""
    plan = parse_workflow(text)
    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider(0.0))
    started = time.perf_counter()
    run = await engine.start(plan, {}, owner_id=owner)
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    elapsed = time.perf_counter() - started
    final = await store.get_run(run.id)
    assert final is not None and final.status.value == "succeeded", final and final.error
    return elapsed / len(plan.steps), len(plan.steps)


async def main() -> None:
    async with bench_database() as (direct, proxied, counter):
        owner = create_user(direct)
        floor = min(insert_floor(direct, 500) for _ in range(3))
        store = await PostgresStore.open(proxied, max_size=4)
        try:
            await drive(store, chain(20), owner)  # warm up
            results = {}
            for name, text in (("chain_200", chain(STEPS)), ("fanout_50", fan_out(50))):
                best = None
                for _ in range(3):
                    before = counter.trips
                    per_step, n = await drive(store, text, owner)
                    trips = (counter.trips - before) / n
                    best = (per_step, trips) if best is None or per_step < best[0] else best
                results[name] = best
        finally:
            await store.close()
    figures = {
        "insert_floor_ms": floor * 1000,
        **{f"{k}_ms_per_step": v[0] * 1000 for k, v in results.items()},
        **{f"{k}_round_trips_per_step": v[1] for k, v in results.items()},
        **{f"{k}_ratio_to_floor": v[0] / floor for k, v in results.items()},
    }
    rows = [("floor: one INSERT per step", f"{floor * 1000:.3f} ms", "", "1.0x")]
    for name, (per_step, trips) in results.items():
        rows.append((f"{name}: claim + complete", f"{per_step * 1000:.3f} ms", f"{trips:.2f}", f"{per_step / floor:.1f}x"))
    print(f"{'durable step overhead (Postgres store, mock 0 s)':<44} {'per step':>10} {'round trips':>12} {'vs floor':>9}")
    for label, ms, trips, ratio in rows:
        print(f"{label:<44} {ms:>10} {trips:>12} {ratio:>9}")
    print("targets: <= 3x the floor, <= 4 round trips per step")
    print(json.dumps({"bench": "store_overhead", **{k: round(v, 4) for k, v in figures.items()}}))


if __name__ == "__main__":
    asyncio.run(main())
