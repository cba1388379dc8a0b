"""What watching costs: N idle watchers of N runs (half long-polls, half SSE streams)
against `orchestrate serve`, and the database transactions per second they cause
(pg_stat_database.xact_commit); then the latency from an event's commit to its
watcher, p50/p99.

The runs are in step mode and paused, so nothing happens unless the benchmark asks for
one step; the server is `orchestrate serve` (mock model at 0 s) on a throwaway embedded
PostgreSQL. Prints a table, then one JSON line.

    python bench/watchers.py [--watchers 1,50,200] [--duration 10] [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import bench_database, create_user  # noqa: E402
from api_latency import SECRET, _free_port, start_server, wait_ready  # noqa: E402

STEPS = 60  # steps per run: one latency sample advances one step
SETTLE = 11.0  # seconds before counting: pg_stat_database lags up to 10 s behind idle backends
WORKFLOW = "name: Watched\nsteps:\n" + "".join(f"  - id: s{i}\n    prompt: 'part {i}'\n" for i in range(STEPS))


class Watcher:
    """Follows one run's events and records when each arrived."""

    def __init__(self, http: httpx.AsyncClient, run_id: str, after: int, sse: bool) -> None:
        self.http, self.run_id, self.after, self.sse = http, run_id, after, sse
        self.arrivals: dict[int, tuple[float, dt.datetime]] = {}  # seq -> (received, created_at)
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        if self.sse:
            params = {"after": self.after}
            async with self.http.stream("GET", f"/v1/runs/{self.run_id}/events", params=params, headers={"Accept": "text/event-stream"}) as stream:
                self.ready.set()
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        self._arrived(json.loads(line.removeprefix("data: ")))
            return
        self.ready.set()
        while True:
            page = (await self.http.get(f"/v1/runs/{self.run_id}/events", params={"after": self.after, "wait": 25})).json()
            for event in page["events"]:
                self._arrived(event)

    def _arrived(self, event: dict[str, Any]) -> None:
        self.arrivals[event["seq"]] = (time.time(), dt.datetime.fromisoformat(event["created_at"]))
        self.after = max(self.after, event["seq"])


async def xact_commit(conninfo: str) -> int:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("select pg_stat_force_next_flush()")
        cur = await conn.execute("select xact_commit from pg_stat_database where datname = current_database()")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def idle_cost(conninfo: str, duration: float) -> float:
    """Transactions/s over ``duration`` seconds."""
    x0, began = await xact_commit(conninfo), time.perf_counter()
    await asyncio.sleep(duration)
    x1, elapsed = await xact_commit(conninfo), time.perf_counter() - began
    return (x1 - x0 - 1) / elapsed  # less our own reading transaction


async def latencies(http: httpx.AsyncClient, watchers: list[Watcher], samples: int) -> list[float]:
    """Advance one paused run a step; time its first new event from commit to arrival."""
    measured: list[float] = []
    for i in range(samples):
        watcher = watchers[i % len(watchers)]
        before = watcher.after
        response = await http.post(f"/v1/runs/{watcher.run_id}/step")
        response.raise_for_status()
        try:
            async with asyncio.timeout(30):
                while not any(seq > before for seq in watcher.arrivals):
                    await asyncio.sleep(0.005)
        except TimeoutError:
            run = (await http.get(f"/v1/runs/{watcher.run_id}")).json()
            events = (await http.get(f"/v1/runs/{watcher.run_id}/events", params={"after": before})).json()
            raise SystemExit(
                f"no event reached watcher {i % len(watchers)} of {len(watchers)}, of run {watcher.run_id} (sse={watcher.sse}, "
                f"after {before}, arrivals {sorted(watcher.arrivals)}, task {watcher.task}) in 30 s: "
                f"run {run['status']}, steps {[(s['id'], s['status']) for s in run['steps'][:4]]}, events {events['events'][:3]}"
            ) from None
        received, created = watcher.arrivals[min(seq for seq in watcher.arrivals if seq > before)]
        measured.append(received - created.timestamp())
        # Let the step finish and the run pause again before the next sample.
        async with asyncio.timeout(30):
            while await _status(http, watcher.run_id) != "paused":
                await asyncio.sleep(0.02)
    return measured


async def _status(http: httpx.AsyncClient, run_id: str) -> str:
    return str((await http.get(f"/v1/runs/{run_id}")).json()["status"])


async def paused_runs(http: httpx.AsyncClient, n: int) -> list[str]:
    wf = (await http.post("/v1/workflows", json={"source": WORKFLOW})).json()["id"]
    runs = [(await http.post(f"/v1/workflows/{wf}/runs", json={"mode": "step"})).json()["id"] for _ in range(n)]
    for run_id in runs:
        while await _status(http, run_id) != "paused":
            await asyncio.sleep(0.02)
    return runs


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def main(counts: list[int], duration: float, samples: int) -> list[dict[str, Any]]:
    # Direct, not through _pg's counting proxy: it runs in this process, which the
    # watchers keep busy, and would slow the server's queries down.
    async with bench_database() as (conninfo, _, _):
        user = create_user(conninfo)
        token = jwt.encode({"sub": user, "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
        port = _free_port()
        home = Path(tempfile.mkdtemp(prefix="orchestrate-bench-home-"))
        proc = start_server(conninfo, port, home)
        results = []
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url, proc, home / "serve.log")
            limits = httpx.Limits(max_connections=max(counts) + 10, max_keepalive_connections=max(counts) + 10)
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=60) as http:
                runs = await paused_runs(http, max(counts))
                await asyncio.sleep(SETTLE)
                baseline = await idle_cost(conninfo, duration)  # the server alone, nobody watching
                for n in counts:
                    last = {r: (await http.get(f"/v1/runs/{r}/events")).json()["next_after"] for r in runs[:n]}
                    watchers = [Watcher(http, r, last[r], sse=i % 2 == 1) for i, r in enumerate(runs[:n])]
                    tasks = [asyncio.create_task(w.run()) for w in watchers]
                    for watcher, task in zip(watchers, tasks):
                        watcher.task = task
                    try:
                        await asyncio.gather(*(w.ready.wait() for w in watchers))
                        # Every watcher's first read is done, and Postgres has published the
                        # transactions before (a backend flushes its counts within 10 s of idling).
                        await asyncio.sleep(SETTLE)
                        xacts = await idle_cost(conninfo, duration)
                        lat = await latencies(http, watchers, samples)
                    finally:
                        for task in tasks:
                            task.cancel()
                        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
                    failed = [r for r in outcomes if not isinstance(r, asyncio.CancelledError)]
                    if failed:
                        raise SystemExit(f"{len(failed)} watchers failed: {failed[:3]}")
                    results.append(
                        {
                            "watchers": n,
                            "xact_per_s": round(xacts, 1),
                            "xact_per_s_over_idle": round(xacts - baseline, 1),
                            "latency_p50_ms": round(statistics.median(lat) * 1000, 1),
                            "latency_p99_ms": round(_percentile(lat, 0.99) * 1000, 1),
                        }
                    )
        except BaseException:
            print((home / "serve.log").read_text(errors="replace")[-4000:], file=sys.stderr)  # what the server said
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            shutil.rmtree(home, ignore_errors=True)
    return results


def report(results: list[dict[str, Any]], duration: float, samples: int) -> None:
    print(f"{'watchers':>8} {'xact/s':>8} {'over idle':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(f"{r['watchers']:>8} {r['xact_per_s']:>8} {r['xact_per_s_over_idle']:>9} {r['latency_p50_ms']:>8} {r['latency_p99_ms']:>8}")
    print(json.dumps({"bench": "watchers", "duration_s": duration, "samples": samples, "results": results}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", default="1,50,200", help="comma-separated numbers of watchers")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of idle watching per count")
    parser.add_argument("--samples", type=int, default=20, help="latency samples per count")
    args = parser.parse_args()
    counts = [int(n) for n in args.watchers.split(",")]
    report(asyncio.run(main(counts, args.duration, args.samples)), args.duration, args.samples)
