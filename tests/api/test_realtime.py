"""Run progress pushed through Realtime: the real ``realtime`` client (what ``watch``
and ``submit`` use) against the local Realtime stand-in (tests/fakes/realtime_server.py),
the API and a database that broadcasts (the Realtime stand-in schema, then the
migrations, as on a Supabase project)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
import pytest

from orchestrate.api import Services, create_app, local_stack
from orchestrate.cli.live import LiveRefused, LiveUnavailable, RealtimeConfig, follow, page_fetcher
from orchestrate.engine.records import Event
from orchestrate.llm import MockProvider
from orchestrate.settings import Settings
from tests.api.conftest import SECRET, create_workflow, make_token
from tests.fakes.realtime_server import RealtimeServer
from tests.postgres_fixtures import create_user

pytestmark = pytest.mark.postgres

PUBLISHABLE = "sb_publishable_test_0123456789"
APPEND = "select orchestrate.append_events(%s, %s, %s::jsonb)"


@pytest.fixture(scope="module")
async def realtime(realtime_pg_url: str) -> AsyncIterator[RealtimeServer]:
    server = RealtimeServer(realtime_pg_url, SECRET, {PUBLISHABLE})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def rt_stack(realtime_pg_url: str) -> AsyncIterator[Services]:
    async with local_stack(realtime_pg_url, MockProvider(0.05), sweep=False) as services:
        yield services


@pytest.fixture(scope="module")
def rt_settings(realtime: RealtimeServer) -> Settings:
    return Settings(supabase_jwt_secret=SECRET, supabase_url=realtime.url, supabase_publishable_key=PUBLISHABLE, use_mock=True)


@pytest.fixture
async def api(rt_settings: Settings, rt_stack: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt_settings, services=rt_stack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
        yield c


@pytest.fixture
def db(realtime_pg_url: str) -> Any:
    with psycopg.connect(realtime_pg_url, autocommit=True) as conn:
        yield conn


class Recorder:
    """The events ``follow`` delivers, and which of them some API page held."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fetched: set[int] = set()

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.events]


def tok(server: RealtimeServer, user: str, **claims: Any) -> str:
    """An access token as the project's Auth would issue it (its issuer)."""
    return make_token(user, iss=f"{server.url}/auth/v1", **claims)


def config(server: RealtimeServer) -> RealtimeConfig:
    return RealtimeConfig(server.url, PUBLISHABLE)


def headers_of(server: RealtimeServer, user: str) -> Callable[[], dict[str, str]]:
    headers = {"Authorization": f"Bearer {tok(server, user)}"}
    return lambda: headers


def new_run(db: Any, owner: str) -> str:
    """A run row the test drives itself by appending events (no engine)."""
    return str(db.execute("insert into runs (owner_id, spec, status) values (%s, '{}', 'running') returning id::text", (owner,)).fetchone()[0])


def append(db: Any, run: str, owner: str, *types: str) -> None:
    db.execute(APPEND, (run, owner, json.dumps([{"type": t, "step_id": "s", "data": {}} for t in types])))


def finish(db: Any, run: str, owner: str) -> None:
    with db.transaction():
        db.execute("update runs set status = 'succeeded', finished_at = now() where id = %s", (run,))
        append(db, run, owner, "run.succeeded")


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting for {what}")


async def test_config_announces_realtime_for_a_broadcasting_database(api: httpx.AsyncClient, realtime: RealtimeServer) -> None:
    body = (await api.get("/v1/config")).json()
    assert body["realtime"] is True
    assert body["supabase"] == {"url": realtime.url, "publishable_key": PUBLISHABLE}


async def test_the_owner_gets_every_event_of_a_real_run_in_order(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any) -> None:
    user = create_user(db)
    auth = {"Authorization": f"Bearer {tok(realtime, user)}"}
    wf = await create_workflow(api, auth)
    started = await api.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {"who": "Ada"}, "mode": "step"}, headers=auth)
    assert started.status_code in (201, 202), started.text
    run = started.json()
    got = Recorder()
    fetch = page_fetcher(api, run["id"], lambda: auth)
    token = tok(realtime, user)
    task = asyncio.create_task(follow(config(realtime), run["id"], token, fetch, got))
    await until(lambda: realtime.joined(f"run:{run['id']}") == 1, "the join")
    for _ in range(400):  # step mode: each step runs when told, while we are subscribed
        if task.done():
            break
        if _paused(db, run["id"]):
            response = await api.post(f"/v1/runs/{run['id']}/step", headers=auth)
            assert response.status_code < 500, response.text
        await asyncio.sleep(0.05)
    last = await asyncio.wait_for(task, 30)

    logged = (await api.get(f"/v1/runs/{run['id']}/events", headers=auth)).json()["events"]
    assert got.seqs == [e["seq"] for e in logged] == list(range(1, last + 1))  # all, in order, once
    assert [e.type for e in got.events] == [e["type"] for e in logged]
    # Every event after the join went out on the channel (which of them the client took
    # from a push rather than a page depends on timing; test_nothing_falls_between...
    # shows one that only a push could deliver).
    after_join = [e["seq"] for e in logged if e["type"] in ("run.resumed", "run.succeeded")]
    assert after_join and set(after_join) <= set(realtime.pushed[f"run:{run['id']}"])


def _paused(db: Any, run: str) -> bool:
    return bool(db.execute("select status = 'paused' from runs where id = %s", (run,)).fetchone()[0])


async def test_nothing_falls_between_subscribing_and_catching_up(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any) -> None:
    user = create_user(db)
    run = new_run(db, user)
    append(db, run, user, "run.started", "step.queued")  # before the subscription: only the API has them
    got = Recorder()
    plain = page_fetcher(api, run, headers_of(realtime, user))
    calls = 0

    async def racing_fetch(after: int) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            append(db, run, user, "step.started")  # lands after subscribing, before the read: pushed and fetched
        page = await plain(after)
        if calls == 1:
            append(db, run, user, "step.succeeded")  # lands after the read: only pushed
            finish(db, run, user)
        got.fetched.update(int(e["seq"]) for e in page["events"])
        return page

    token = tok(realtime, user)
    await asyncio.wait_for(follow(config(realtime), run, token, racing_fetch, got), 30)
    assert got.seqs == [1, 2, 3, 4, 5]
    assert [e.type for e in got.events] == ["run.started", "step.queued", "step.started", "step.succeeded", "run.succeeded"]
    assert 4 not in got.fetched  # it could only have been pushed


async def test_a_dropped_connection_rejoins_and_misses_nothing(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any) -> None:
    user = create_user(db)
    run = new_run(db, user)
    got = Recorder()
    token = tok(realtime, user)
    task = asyncio.create_task(follow(config(realtime), run, token, page_fetcher(api, run, headers_of(realtime, user)), got))
    topic = f"run:{run}"
    await until(lambda: realtime.joined(topic) == 1, "the join")
    append(db, run, user, "step.started")
    await until(lambda: got.seqs == [1], "the first push")
    joins_before = sum(1 for j in realtime.joins if j.topic == topic)
    await realtime.drop_connections()
    append(db, run, user, "step.succeeded", "step.started")  # while nobody listens
    await until(lambda: sum(1 for j in realtime.joins if j.topic == topic) > joins_before, "the rejoin")
    append(db, run, user, "step.succeeded")
    finish(db, run, user)
    await asyncio.wait_for(task, 30)
    assert got.seqs == [1, 2, 3, 4, 5]


async def test_another_users_run_is_refused(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any) -> None:
    alice, bob = create_user(db), create_user(db)
    run = new_run(db, alice)
    append(db, run, alice, "run.started")
    got = Recorder()
    token = tok(realtime, bob)
    with pytest.raises(LiveRefused, match="Unauthorized.*not yours"):
        await asyncio.wait_for(follow(config(realtime), run, token, page_fetcher(api, run, headers_of(realtime, bob)), got), 30)
    assert got.events == []
    assert realtime.joins[-1].topic == f"run:{run}" and not realtime.joins[-1].ok


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ({"secret": "not-the-project-secret-" + "x" * 40}, "InvalidJWTToken"),
        ({"exp": int(time.time()) - 60}, "expired"),
    ],
    ids=["forged", "expired"],
)
async def test_a_bad_token_is_refused(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any, token: dict[str, Any], reason: str) -> None:
    user = create_user(db)
    run = new_run(db, user)
    with pytest.raises(LiveRefused, match=reason):
        await asyncio.wait_for(follow(config(realtime), run, tok(realtime, user, **token), page_fetcher(api, run, headers_of(realtime, user)), Recorder()), 30)
    assert not realtime.joins[-1].ok


async def test_the_token_is_refreshed_on_the_channel_before_it_expires(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any) -> None:
    user = create_user(db)
    run = new_run(db, user)
    got = Recorder()
    now = int(time.time())
    short = tok(realtime, user, iat=now, exp=now + 4)  # refreshed a second before it expires
    minted: list[str] = []

    async def fresh() -> str:
        minted.append(tok(realtime, user))
        return minted[-1]

    refreshes = realtime.token_refreshes
    task = asyncio.create_task(follow(config(realtime), run, short, page_fetcher(api, run, headers_of(realtime, user)), got, fresh_token=fresh))
    await until(lambda: realtime.token_refreshes > refreshes, "the token refresh")
    await until(lambda: time.time() > now + 5, "the first token's expiry")
    append(db, run, user, "step.started")  # after the first token expired: still pushed
    await until(lambda: got.seqs == [1], "a push after the expiry")
    finish(db, run, user)
    await asyncio.wait_for(task, 30)
    assert got.seqs == [1, 2] and len(minted) == 1


async def test_without_a_fresh_token_the_expiry_ends_the_watch_clearly(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any) -> None:
    user = create_user(db)
    run = new_run(db, user)
    now = int(time.time())
    short = tok(realtime, user, iat=now, exp=now + 2)
    with pytest.raises(LiveRefused, match="expired.*orchestrate token"):
        await asyncio.wait_for(follow(config(realtime), run, short, page_fetcher(api, run, headers_of(realtime, user)), Recorder()), 30)


async def test_an_unreachable_realtime_is_reported_for_a_fallback(api: httpx.AsyncClient, realtime: RealtimeServer, db: Any) -> None:
    user = create_user(db)
    run = new_run(db, user)
    wrong_key = RealtimeConfig("http://127.0.0.1:9", PUBLISHABLE)  # nothing listens on the discard port
    with pytest.raises(LiveUnavailable):
        await asyncio.wait_for(follow(wrong_key, run, tok(realtime, user), page_fetcher(api, run, headers_of(realtime, user)), Recorder()), 60)
