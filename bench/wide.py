"""A wide run on the Postgres store (mock model at 0 s, in-process queue, 32 workers):
one run of a 500-item ``for_each``, in items per second, with the process's resident
memory before, after and at its peak during the run (memory must stay flat);
then the noisy neighbour: a 3-step run started while the wide run runs, beside the
same run alone. Prints a table, then one JSON line.

    python bench/wide.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import bench_database, create_user  # noqa: E402

from orchestrate import MockProvider, parse_workflow  # noqa: E402
from orchestrate.db.store import PostgresStore  # noqa: E402
from orchestrate.engine.core import Engine  # noqa: E402
from orchestrate.engine.queue import InProcessQueue, consume  # noqa: E402
from orchestrate.spec import Plan  # noqa: E402

ITEMS, WORKERS = 500, 32
WIDE = f"""
name: wide
steps:
  - id: items
    for_each: "{{{{ range({ITEMS}) | list }}}}"
    prompt: "item {{{{ item }}}} of {{{{ loop.length }}}}"
"""
SMALL = "name: small\nsteps:\n  - {id: a, prompt: one}\n  - {id: b, prompt: 'two {{ a }}'}\n  - {id: c, prompt: 'three {{ b }}'}\n"


def rss_mib() -> float:
    """Resident memory of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def backends_cpu(conninfo: str) -> float:
    """CPU seconds used so far by the server's client backends (Linux /proc; the
    engine's pool keeps its connections, so these are the ones doing the work)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute("select pid from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()")]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def function_ms(conninfo: str) -> dict[str, float]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("select funcname, sum(total_time) from pg_stat_user_functions where schemaname = 'orchestrate' group by funcname").fetchall()
    return {name: float(ms) for name, ms in rows}


async def sample_peak(peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], rss_mib())
        await asyncio.sleep(0.05)


async def finish(store: PostgresStore, run_id: str) -> None:
    """Wait for the run to end, polling only its status (reading a 500-item run in full
    every few milliseconds would cost the database more than the run itself)."""
    while True:
        async with store.pool.connection() as conn:
            cur = await conn.execute("select status, error from public.runs where id = %s", (run_id,))
            row = await cur.fetchone()
        assert row is not None
        if row[0] in ("succeeded", "failed", "cancelled"):
            assert row[0] == "succeeded", row[1]
            return
        await asyncio.sleep(0.01)


async def timed(engine: Engine, store: PostgresStore, plan: Plan, owner: str) -> float:
    started = time.perf_counter()
    run = await engine.start(plan, {}, owner_id=owner)
    await finish(store, run.id)
    return time.perf_counter() - started


async def main() -> None:
    async with bench_database() as (direct, _proxied, _counter):
        owner, neighbour = create_user(direct), create_user(direct)
        # track_functions: the time spent inside the protocol's functions, for the split.
        store = await PostgresStore.open(make_conninfo(direct, options="-c track_functions=pl"), min_size=WORKERS, max_size=WORKERS + 4)
        queue = InProcessQueue()
        engine = Engine(store, queue, MockProvider(0.0))
        worker = asyncio.create_task(consume(queue, engine.process, WORKERS))
        wide, small = parse_workflow(WIDE), parse_workflow(SMALL)
        try:
            await timed(engine, store, small, neighbour)  # warm up
            alone = min([await timed(engine, store, small, neighbour) for _ in range(3)])
            before = rss_mib()
            peak = [before]
            sampler = asyncio.create_task(sample_peak(peak))
            functions_before = function_ms(direct)
            db_cpu = backends_cpu(direct)
            cpu = time.process_time()
            started = time.perf_counter()
            run = await engine.start(wide, {}, owner_id=owner)
            await asyncio.sleep(0.3)  # the wide run is well under way
            beside = await timed(engine, store, small, neighbour)
            await finish(store, run.id)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            db_cpu = backends_cpu(direct) - db_cpu
            sampler.cancel()
            after = rss_mib()
            final = await store.get_run(run.id)
            assert final is not None and len(final.steps["items"].outputs or []) == ITEMS  # type: ignore[arg-type]
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await store.close()
        await asyncio.sleep(1.2)  # backends flush their function statistics on exit
        in_functions = {k: v - functions_before.get(k, 0.0) for k, v in function_ms(direct).items()}
    items_per_s = ITEMS / elapsed
    growth = after - before
    print(f"{'wide run (Postgres, in-process queue, mock 0 s, 32 workers)':<60} {'figure':>12}")
    print(f"{f'one run of a {ITEMS}-item for_each':<60} {elapsed:>10.2f} s")
    print(f"{'items per second (target >= 300)':<60} {items_per_s:>12.0f}")
    print(f"{'resident memory: before / peak during / after (MiB)':<60} {before:.0f} / {peak[0]:.0f} / {after:.0f}")
    print(f"{'where an item goes: engine process CPU (Python) per item':<60} {cpu / ITEMS * 1000:>9.2f} ms")
    print(f"{'  database backends CPU per item':<60} {db_cpu / ITEMS * 1000:>9.2f} ms")
    for name in ("claim_step", "complete_step"):
        print(f"{f'  database: wall time inside {name} per item (locks too)':<60} {in_functions.get(name, 0.0) / ITEMS:>9.2f} ms")
    print(f"{'  machine load (1-minute average, 2 cores here)':<60} {os.getloadavg()[0]:>12.1f}")
    print(f"{'3-step run alone':<60} {alone * 1000:>9.0f} ms")
    print(f"{'3-step run beside the wide run (target <= 2x alone)':<60} {beside * 1000:>9.0f} ms")
    print(f"{'ratio':<60} {beside / alone:>11.1f}x")
    print(json.dumps({
        "bench": "wide", "items": ITEMS, "seconds": round(elapsed, 3), "items_per_s": round(items_per_s, 1),
        "rss_before_mib": round(before, 1), "rss_peak_mib": round(peak[0], 1), "rss_growth_mib": round(growth, 1),
        "python_cpu_ms_per_item": round(cpu / ITEMS * 1000, 2), "db_cpu_ms_per_item": round(db_cpu / ITEMS * 1000, 2),
        **{f"{k}_ms_per_item": round(in_functions.get(k, 0.0) / ITEMS, 2) for k in ("claim_step", "complete_step")},
        "neighbour_alone_ms": round(alone * 1000, 1), "neighbour_beside_ms": round(beside * 1000, 1), "neighbour_ratio": round(beside / alone, 2),
    }))


if __name__ == "__main__":
    asyncio.run(main())
