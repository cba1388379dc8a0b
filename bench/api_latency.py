"""API latency under load on loopback: p50/p99 of GET /v1/runs/{id} and
POST /v1/workflows/{id}/runs, and the sustained request rate with zero errors.

The server is `orchestrate serve` in its own process (uvicorn, in-process worker, mock
model at 0 s) on a throwaway embedded PostgreSQL; the load generator is a closed loop
of asyncio httpx clients here. Prints a table, then one JSON line.

    python bench/api_latency.py [--duration 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import bench_database, create_user  # noqa: E402

SECRET = "bench-secret-" + "0123456789abcdef" * 3
WORKFLOW = "name: Bench\ninputs:\n  who: {type: string, default: you}\nsteps:\n  - id: greet\n    prompt: 'Hello {{ inputs.who }}'\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(conninfo: str, port: int, home: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATE_", "SUPABASE_", "OPENAI_"))}
    env.update(DATABASE_URL=conninfo, SUPABASE_JWT_SECRET=SECRET, ORCHESTRATE_USE_MOCK="1", ORCHESTRATE_MOCK_DELAY="0")
    env.update(XDG_CONFIG_HOME=str(home), XDG_DATA_HOME=str(home))  # leave the user's client config alone
    with (home / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrate", "serve", "--port", str(port), "--no-access-log"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"the server exited:\n{log.read_text(errors='replace')}")
            try:
                if (await client.get(f"{url}/v1/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start")


async def load(client: httpx.AsyncClient, method: str, path: str, body: Any, concurrency: int, duration: float, expect: int) -> dict[str, Any]:
    """A closed loop: ``concurrency`` clients, each sending its next request when the last answered."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                response = await client.request(method, path, json=body)
                ok = response.status_code == expect
                key = str(response.status_code)
            except httpx.HTTPError as exc:
                ok, key = False, type(exc).__name__
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors[key] = errors.get(key, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
    }


async def main(duration: float, concurrency: int) -> dict[str, Any]:
    async with bench_database() as (conninfo, _, _):
        user = create_user(conninfo)
        token = jwt.encode({"sub": user, "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        home = Path(tempfile.mkdtemp(prefix="orchestrate-bench-home-"))
        proc = start_server(conninfo, port, home)
        try:
            await wait_ready(url, proc, home / "serve.log")
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=30) as client:
                wf = (await client.post("/v1/workflows", json={"source": WORKFLOW})).json()
                run = (await client.post(f"/v1/workflows/{wf['id']}/runs", json={})).json()
                get_path, post_path = f"/v1/runs/{run['id']}", f"/v1/workflows/{wf['id']}/runs"
                await load(client, "GET", get_path, None, concurrency, 1.0, 200)  # warm up
                results = {}
                for name, method, path, body, expect in (
                    ("GET /v1/runs/{id}", "GET", get_path, None, 200),
                    ("POST /v1/workflows/{id}/runs", "POST", post_path, {"inputs": {"who": "bench"}}, 202),
                ):
                    results[name] = {
                        "alone": await load(client, method, path, body, 1, duration / 2, expect),
                        "loaded": await load(client, method, path, body, concurrency, duration, expect),
                    }
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            shutil.rmtree(home, ignore_errors=True)
    return results


def report(results: dict[str, Any], concurrency: int, duration: float) -> None:
    print(f"{'endpoint':32} {'clients':>7} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, phases in results.items():
        for phase, r in phases.items():
            clients = 1 if phase == "alone" else concurrency
            print(f"{name:32} {clients:>7} {r['requests']:>9} {r['errors']:>6} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8}")
    figures = {
        "bench": "api_latency",
        "concurrency": concurrency,
        "duration_s": duration,
        "get_run": results["GET /v1/runs/{id}"],
        "start_run": results["POST /v1/workflows/{id}/runs"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per endpoint")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    args = parser.parse_args()
    results = asyncio.run(main(args.duration, args.concurrency))
    report(results, args.concurrency, args.duration)
    if any(r["errors"] for phases in results.values() for r in phases.values()):
        sys.exit("errors under load: the reported rate is not error-free")
