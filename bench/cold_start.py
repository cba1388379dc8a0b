"""Cold start of each Lambda function module: a fresh interpreter per measurement,
minus a bare interpreter's start, median of several.

Two figures, so a change that only moves work from import to the first request shows
as such: the import of each module, and for the API the time to its first answered
request (import, then the handler answering an authenticated API Gateway v2 event for
``GET /v1/workflows`` on a throwaway embedded PostgreSQL, opening its pool). Wall time
is the figure; the CPU time of the same runs is printed beside it, since on a shared
machine waiting for a core inflates wall time but not CPU time. Prints a table, then
one JSON line.

    python bench/cold_start.py
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import bench_database, create_user  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["functions.step_runner", "functions.sweeper", "functions.webhook_delivery", "functions.api"]
REPEAT = 7
SECRET = "bench-secret-" + "0123456789abcdef" * 3
# Configuration a deployed function has (nothing is contacted at import).
ENV = {"SUPABASE_JWT_SECRET": SECRET, "DATABASE_URL": "postgresql://bench@127.0.0.1:1/bench"}
# The API's first invocation, as Lambda makes it; the answer must be a 200.
FIRST_REQUEST = """
import json, sys
from functions.api import handler
answer = handler(json.loads(sys.argv[1]), None)
assert answer["statusCode"] == 200, answer
"""


def timed(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds of a fresh interpreter running ``code``."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}", **ENV, **(env or {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    timed(code, *args, env=env)  # warm the file cache and bytecode
    samples = [timed(code, *args, env=env) for _ in range(REPEAT)]
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def event(method: str, path: str, token: str) -> dict[str, object]:
    """An API Gateway HTTP API (v2) event."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "api.example.test", "authorization": f"Bearer {token}", "x-forwarded-proto": "https"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.example.test",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "bench"},
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }


async def first_request() -> tuple[float, float]:
    async with bench_database() as (conninfo, _, _):
        user = create_user(conninfo)
        token = jwt.encode({"sub": user, "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
        return await asyncio.to_thread(median, FIRST_REQUEST, json.dumps(event("GET", "/v1/workflows", token)), env={"DATABASE_URL": conninfo})


def main() -> None:
    base, base_cpu = median("pass")
    figures: dict[str, tuple[float, float]] = {}
    for module in MODULES:
        if (ROOT / (module.replace(".", "/") + ".py")).exists():
            wall, cpu = median(f"import {module}")
            figures[module] = ((wall - base) * 1000, (cpu - base_cpu) * 1000)
    first_wall, first_cpu = asyncio.run(first_request())
    first = ((first_wall - base) * 1000, (first_cpu - base_cpu) * 1000)
    print(f"{'cold start (minus the interpreter)':<44} {'ms':>8} {'cpu ms':>8}")
    print(f"{'(bare interpreter start)':<44} {base * 1000:>8.0f} {base_cpu * 1000:>8.0f}")
    for module, (ms, cpu_ms) in figures.items():
        print(f"{'import ' + module:<44} {ms:>8.0f} {cpu_ms:>8.0f}")
    print(f"{'functions.api: import + first request':<44} {first[0]:>8.0f} {first[1]:>8.0f}")
    print(
        json.dumps(
            {
                "bench": "cold_start",
                "interpreter_ms": round(base * 1000, 1),
                **{k: round(v[0], 1) for k, v in figures.items()},
                "api_first_request_ms": round(first[0], 1),
                "cpu_ms": {**{k: round(v[1], 1) for k, v in figures.items()}, "api_first_request": round(first[1], 1)},
            }
        )
    )


if __name__ == "__main__":
    main()
