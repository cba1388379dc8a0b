"""Fixtures of the webhook tests: a Postgres store, a receiver on loopback, finished
runs with their recorded deliveries, and the API on a stack that sends webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from orchestrate.api import Services, create_app, local_stack
from orchestrate.db.store import PostgresStore
from orchestrate.engine.core import Engine
from orchestrate.engine.queue import InProcessQueue
from orchestrate.llm import MockProvider
from orchestrate.settings import Settings
from orchestrate.spec import parse_workflow
from tests.api.conftest import SECRET
from tests.fakes.receiver import Receiver

PAIR = "name: pair\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: '{{ a }}'}\n"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_url)
    yield store
    await store.close()


async def finished_run(store: PostgresStore, owner: str, url: str) -> str:
    """Run a workflow to the end on Postgres; its delivery is recorded, not sent."""
    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider())
    run = await engine.start(parse_workflow(PAIR), {}, owner_id=owner, webhook_url=url)
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    return run.id


async def delivery_row(store: PostgresStore, delivery_id: str) -> dict[str, Any]:
    async with store.transaction() as conn:
        cur = await conn.execute(
            "select status, attempts, last_status_code, last_error, attempt_log, next_attempt_at > now() as later from public.webhook_deliveries where id = %s",
            (delivery_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(zip(("status", "attempts", "code", "error", "log", "later"), row, strict=True))


async def secret_of(store: PostgresStore, owner: str) -> str:
    async with store.transaction() as conn:
        row = await (await conn.execute("select secret from public.webhook_secrets where owner_id = %s", (owner,))).fetchone()
    assert row is not None
    return str(row[0])


async def _client(pg_url: str, *, allow_private: bool) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    async with local_stack(pg_url, MockProvider(0.0), sweep=False, max_size=4, allow_private_webhooks=allow_private) as services:
        app = create_app(Settings(supabase_jwt_secret=SECRET, use_mock=True, mock_delay=0.0), services=services)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
            yield client, services


@pytest.fixture(scope="session")
async def public_api(pg_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The API as hosted: webhook URLs must name public addresses."""
    async for pair in _client(pg_url, allow_private=False):
        yield pair


@pytest.fixture(scope="session")
async def local_api(pg_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The API with ORCHESTRATE_WEBHOOK_ALLOW_PRIVATE (local development): webhooks
    go to receivers on loopback, sent as soon as a run ends."""
    async for pair in _client(pg_url, allow_private=True):
        yield pair
