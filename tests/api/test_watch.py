"""Watching runs costs a wake-up, not a poll per watcher: long-polls and SSE streams of
one process share one poller, so the database load is flat in the number of watchers.
Measured by counting the queries the app makes (its pool's connection requests: each is
one transaction), over the same number of poll ticks, with 1 and with 50 watchers."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from orchestrate.api import Services, create_app, local_stack
from orchestrate.db.watch import RunWatch
from orchestrate.llm import ChatRequest, Completion, MockProvider
from orchestrate.settings import Settings

from .conftest import bearer

pytestmark = pytest.mark.postgres

ONE_STEP = "name: Wait\nsteps:\n  - id: only\n    prompt: 'Take your time'\n"


class GatedProvider:
    """The mock model, answering only once ``gate`` is set: runs stay idle mid-step."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0
        self.mock = MockProvider(0.0)

    async def complete(self, request: ChatRequest) -> Completion:
        self.started += 1
        await self.gate.wait()
        return await self.mock.complete(request)


@asynccontextmanager
async def serving(pg_url: str, settings: Settings, provider: GatedProvider) -> AsyncIterator[tuple[str, Services]]:
    """Our own stack (its own pool, to count its queries) under a real uvicorn on loopback."""
    async with local_stack(pg_url, provider, sweep=False, max_size=8) as services:
        app = create_app(settings, services=services)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            yield f"http://127.0.0.1:{listener.getsockname()[1]}", services
        finally:
            server.should_exit = True
            await task
            listener.close()


def queries(services: Services) -> int:
    return int(services.store.pool.get_stats()["requests_num"])


async def until(condition: Callable[[], bool], within: float = 60) -> None:
    """Wait for ``condition`` (a generous bound, so a regression fails instead of hanging)."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.01)


async def per_tick(watch: RunWatch, services: Services, ticks: int) -> tuple[int, int]:
    """(queries, ticks) over the next ``ticks`` polls."""
    q0, t0 = queries(services), watch.polls
    await until(lambda: watch.polls >= t0 + ticks)
    return queries(services) - q0, watch.polls - t0


async def sse_types(http: httpx.AsyncClient, run_id: str, after: int) -> list[str]:
    types: list[str] = []
    async with http.stream("GET", f"/v1/runs/{run_id}/events", params={"after": after}, headers={"Accept": "text/event-stream"}) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                types.append(json.loads(line.removeprefix("data: "))["type"])
    return types


async def long_poll_types(http: httpx.AsyncClient, run_id: str, after: int) -> list[str]:
    page = (await http.get(f"/v1/runs/{run_id}/events", params={"after": after, "wait": 25})).json()
    return [e["type"] for e in page["events"]]


async def test_watchers_share_one_poll_per_tick(pg_url: str, api_settings: Settings, make_user: Callable[..., str]) -> None:
    provider = GatedProvider()
    async with serving(pg_url, api_settings, provider) as (url, services):
        watch = services.watch
        async with httpx.AsyncClient(base_url=url, headers=bearer(make_user()), timeout=60) as http:
            runs = [(await http.post("/v1/runs", json={"source": ONE_STEP})).json()["id"] for _ in range(50)]
            await until(lambda: provider.started == 50)  # every run mid-step: no event is coming
            last = {rid: (await http.get(f"/v1/runs/{rid}/events")).json()["next_after"] for rid in runs}
            assert watch.polls == 0  # nobody watches: nothing is polled

            one = asyncio.create_task(long_poll_types(http, runs[0], last[runs[0]]))
            await until(lambda: watch.watching == 1)
            alone = await per_tick(watch, services, 20)

            polls = [asyncio.create_task(long_poll_types(http, rid, last[rid])) for rid in runs[1:25]]
            streams = [asyncio.create_task(sse_types(http, rid, last[rid])) for rid in runs[25:]]
            try:
                await until(lambda: watch.watching == 50)
                crowd = await per_tick(watch, services, 20)

                # One query per tick either way, where a poll per watcher would be 50.
                assert alone[0] - alone[1] in (0, 1) and crowd[0] - crowd[1] in (0, 1), (alone, crowd)

                provider.gate.set()  # the runs move: every watcher is woken with its events
                answered = await asyncio.gather(one, *polls)
                assert all(types and types[0] == "step.succeeded" for types in answered), answered
                streamed = await asyncio.gather(*streams)
                assert all(types[0] == "step.succeeded" and types[-1] == "run.succeeded" for types in streamed), streamed
            finally:
                for task in (one, *polls, *streams):
                    task.cancel()
        await until(lambda: watch.watching == 0)


async def test_a_wait_wakes_on_an_event_and_ends_cleanly(pg_url: str, api_settings: Settings, make_user: Callable[..., str]) -> None:
    """The poller runs only while someone waits; a cancelled or timed-out wait leaves
    nothing behind; a deleted run wakes its watchers instead of leaving them waiting."""
    provider = GatedProvider()
    async with serving(pg_url, api_settings, provider) as (url, services):
        watch = services.watch
        async with httpx.AsyncClient(base_url=url, headers=bearer(make_user()), timeout=60) as http:
            rid = (await http.post("/v1/runs", json={"source": ONE_STEP})).json()["id"]
            await until(lambda: provider.started == 1)
            after = (await http.get(f"/v1/runs/{rid}/events")).json()["next_after"]

            assert await watch.wait(rid, after, 0.3) is False  # nothing happened
            waiting = asyncio.create_task(watch.wait(rid, after, 30))
            await until(lambda: watch.watching == 1)
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            assert watch.watching == 0
            await until(lambda: watch._task is None or watch._task.done())  # idle: no more polls

            woken = asyncio.create_task(watch.wait(rid, after, 30))
            await until(lambda: watch.watching == 1)
            provider.gate.set()
            assert await woken is True

            gone = asyncio.create_task(watch.wait(rid, 10**6, 30))
            await until(lambda: watch.watching == 1)
            async with services.store.pool.connection() as conn:
                await conn.execute("delete from public.runs where id = %s", (rid,))
            assert await gone is True


async def test_a_lost_database_is_one_line_and_the_poller_recovers(
    pg_url: str, make_user: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """While the database is unreachable, the poller logs one line (no traceback) per
    outage, not one per tick, and wakes its watchers once it answers again."""
    from orchestrate.db.store import PostgresStore

    store = await PostgresStore.open(pg_url, max_size=2)
    watch = RunWatch(store, tick=0.01)
    real = store.pool.connection
    down = True

    @asynccontextmanager
    async def flaky(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with real(*args, **kwargs) as conn:
            if down:  # what a server that went away looks like to psycopg
                await conn.execute("select pg_terminate_backend(pg_backend_pid())")
            yield conn

    try:
        with caplog.at_level("INFO", logger="orchestrate.watch"):
            store.pool.connection = flaky  # type: ignore[method-assign]
            async with asyncio.timeout(60):
                waiting = asyncio.create_task(watch.wait("00000000-0000-4000-8000-000000000000", 0, 30))
                await until(lambda: watch.polls >= 3)
                down = False
                assert await waiting is True  # that run does not exist: moved, once polled
        ours = [r for r in caplog.records if r.name == "orchestrate.watch"]
        failures = [r for r in ours if r.levelname != "INFO"]
        assert len(failures) == 1 and failures[0].exc_info is None, caplog.text
        assert "database unavailable" in failures[0].getMessage()
        assert [r.getMessage() for r in ours if r.levelname == "INFO"] == ["event watch: database reachable again"]
    finally:
        await watch.close()
        await store.close()
