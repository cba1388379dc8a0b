"""Durable per-step orchestration overhead on Postgres (mock model at 0 s, in-process
queue), beside two baselines measured in the same run on the same server: the floor
of one INSERT per step, and a plain claim + complete written by hand (two pipelined
transactions per step: claim the row with an asynchronous commit, as the protocol's
claim does; then record the output and queue the next step), all timed on direct
connections. Database round trips are counted by a proxy in a separate run,
``complete_step`` calls by Postgres (track_functions).
Prints a table, then one JSON line.

    python bench/store_overhead.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import RoundTripCounter, bench_database, create_user  # noqa: E402
from _workflows import chain, fan_out  # noqa: E402

from orchestrate import MockProvider, parse_workflow  # noqa: E402
from orchestrate.db.store import PostgresStore  # noqa: E402
from orchestrate.engine.core import Engine  # noqa: E402
from orchestrate.engine.queue import InProcessQueue  # noqa: E402
from orchestrate.llm import ChatRequest  # noqa: E402

STEPS = 200
REPEATS = 5


def insert_floor(conninfo: str, n: int) -> float:
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("create table if not exists bench_floor (id bigserial primary key, run_id uuid, step_id text, output text)")
        started = time.perf_counter()
        for i in range(n):
            conn.execute("insert into bench_floor (run_id, step_id, output) values (gen_random_uuid(), %s, %s)", (f"s{i}", "x" * 40))
        return (time.perf_counter() - started) / n


async def hand_written(conninfo: str, n: int) -> float:
    """A chain of ``n`` steps with the least a durable claim + complete needs: one
    statement each, on connections of their own (the claim's commit asynchronous)."""
    claims = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, prepare_threshold=None, options="-c synchronous_commit=off")
    completes = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, prepare_threshold=None)
    try:
        await completes.execute(
            "create table if not exists bench_steps (run_id uuid, step_id integer, status text not null, attempt integer not null default 0,"
            " output text, primary key (run_id, step_id))"
        )
        run_id = uuid.uuid4()
        mock = MockProvider(0.0)
        started = time.perf_counter()
        await completes.execute(
            "insert into bench_steps (run_id, step_id, status) select %s, i, case when i = 0 then 'queued' else 'pending' end from generate_series(0, %s) i",
            (run_id, n - 1),
        )
        for i in range(n):
            cur = await claims.execute(
                "update bench_steps set status = 'running', attempt = attempt + 1 where run_id = %s and step_id = %s and status = 'queued' returning attempt",
                (run_id, i),
            )
            row = await cur.fetchone()
            assert row is not None
            answer = await mock.complete(ChatRequest(model="m", messages=[{"role": "user", "content": f"next {i}"}]))
            await completes.execute(
                "with done as (update bench_steps set status = 'succeeded', output = %s"
                "  where run_id = %s and step_id = %s and status = 'running' and attempt = %s returning step_id)"
                " update bench_steps set status = 'queued' where run_id = %s and step_id = %s and exists (select from done)",
                (answer.text, run_id, i, row[0], run_id, i + 1),
            )
        return (time.perf_counter() - started) / n
    finally:
        await claims.close()
        await completes.close()


async def drive(store: PostgresStore, text: str, owner: str, counter: RoundTripCounter | None = None) -> tuple[float, int, float]:
    """Run a workflow by draining the queue in this task: pure protocol cost per step.
    Returns seconds and round trips per step (the check of the result counts for neither)."""
    plan = parse_workflow(text)
    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider(0.0))
    trips = counter.trips if counter else 0
    started = time.perf_counter()
    run = await engine.start(plan, {}, owner_id=owner)
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    elapsed = time.perf_counter() - started
    trips = (counter.trips - trips) if counter else 0
    final = await store.get_run(run.id)
    assert final is not None and final.status.value == "succeeded", final and final.error
    return elapsed / len(plan.steps), len(plan.steps), trips / len(plan.steps)


def function_calls(conninfo: str, name: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("select coalesce(sum(calls), 0) from pg_stat_user_functions where schemaname = 'orchestrate' and funcname = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


async def main() -> None:
    async with bench_database() as (direct, proxied, counter):
        owner = create_user(direct)
        # Timed on direct connections, like the floor, and interleaved round by round
        # (the best of each kept) so that every figure meets the same machine load.
        # Round trips are counted in one more run of each shape through the proxy.
        store = await PostgresStore.open(make_conninfo(direct, options="-c track_functions=pl"), max_size=4)
        counted = await PostgresStore.open(make_conninfo(proxied, options="-c track_functions=pl"), max_size=4)
        shapes = {"chain_200": chain(STEPS), "fanout_50": fan_out(50)}
        best: dict[str, float] = {}
        results: dict[str, Any] = {}
        try:
            await drive(store, chain(20), owner)  # warm up
            for _ in range(REPEATS):
                timings = {"floor": insert_floor(direct, STEPS), "hand": await hand_written(direct, STEPS)}
                for name, text in shapes.items():
                    timings[name] = (await drive(store, text, owner))[0]
                best = {k: min(v, best.get(k, v)) for k, v in timings.items()}
            for name, text in shapes.items():
                _, n, trips = await drive(counted, text, owner, counter)
                results[name] = (best[name], trips, n)
        finally:
            await store.close()
            await counted.close()
        await asyncio.sleep(1.2)  # backends flush their function statistics on exit
        completes = function_calls(direct, "complete_step")
    floor, hand = best["floor"], best["hand"]
    steps = 20 + (REPEATS + 1) * sum(v[2] for v in results.values())
    figures = {
        "insert_floor_ms": floor * 1000,
        "hand_written_ms_per_step": hand * 1000,
        **{f"{k}_ms_per_step": v[0] * 1000 for k, v in results.items()},
        **{f"{k}_round_trips_per_step": v[1] for k, v in results.items()},
        **{f"{k}_ratio_to_floor": v[0] / floor for k, v in results.items()},
        "chain_200_ratio_to_hand_written": results["chain_200"][0] / hand,
        "complete_step_calls_per_step": completes / steps,
    }
    rows = [("floor: one INSERT per step", floor, "", "1.0x", ""), ("hand-written claim + complete (chain)", hand, "", f"{hand / floor:.1f}x", "1.00x")]
    for name, (per_step, trips, _) in results.items():
        rows.append((f"{name}: claim + complete", per_step, f"{trips:.2f}", f"{per_step / floor:.1f}x", f"{per_step / hand:.2f}x"))
    print(f"{'durable step overhead (Postgres store, mock 0 s)':<44} {'per step':>10} {'round trips':>12} {'vs floor':>9} {'vs hand':>8}")
    for label, seconds, trips, ratio, vs_hand in rows:
        print(f"{label:<44} {seconds * 1000:>7.3f} ms {trips:>12} {ratio:>9} {vs_hand:>8}")
    print(f"{'complete_step calls per step':<44} {figures['complete_step_calls_per_step']:>10.2f}")
    print("targets: chain <= 3x the floor and <= 1.3x hand-written; fan-out <= 4x; 1.0 complete per step; <= 2.1 round trips")
    print(json.dumps({"bench": "store_overhead", **{k: round(v, 4) for k, v in figures.items()}}))


if __name__ == "__main__":
    asyncio.run(main())
