"""/v1/secrets and http steps through the API: a secret goes in, reaches the API it is
meant for, and comes out nowhere: not the run, its events, its step rows, its export,
its webhook, the logs, nor the database in clear."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from orchestrate.api import Services, create_app, local_stack
from orchestrate.llm import MockProvider
from orchestrate.settings import Settings
from orchestrate.vault import new_key
from tests.fakes.api_server import ApiServer, json_reply
from tests.fakes.receiver import Receiver
from tests.postgres_fixtures import acting_as

from .conftest import bearer, wait_finished

pytestmark = pytest.mark.postgres

VALUE = "sk-live-4b1d9e77c2a0f5"  # the secret: it must reach the API server and nothing else


@pytest.fixture(scope="module")
async def secret_stack(pg_url: str) -> AsyncIterator[Services]:
    # Loopback allowed (the local API server and receiver), and a key to seal secrets.
    async with local_stack(pg_url, MockProvider(0.0), sweep=False, max_size=4, allow_private_webhooks=True, secrets_key=new_key()) as services:
        yield services


@pytest.fixture
async def client(api_settings: Settings, secret_stack: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_settings, services=secret_stack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
        yield c


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    yield server
    server.stop()


def source(base: str) -> str:
    return (
        "name: Call\ninputs: {base: {default: 'http://127.0.0.1'}}\nsteps:\n"
        "  - id: call\n"
        "    http: {url: '{{ inputs.base }}/me?key={{ secrets.API_KEY }}', headers: {Authorization: 'Bearer {{ secrets.API_KEY }}'}}\n"
        "    outputs: [{name: echo}]\n"
        "  - {id: summary, prompt: 'Summarise {{ steps.call.outputs.echo }}'}\n"
    )


async def put(client: httpx.AsyncClient, auth: dict[str, str], name: str, value: str) -> httpx.Response:
    return await client.put(f"/v1/secrets/{name}", json={"value": value}, headers=auth)


async def test_put_list_and_delete_show_names_never_values(client: httpx.AsyncClient, make_user: Callable[..., str], pg_conn: psycopg.Connection[Any]) -> None:
    alice, bob = bearer(a := make_user()), bearer(make_user())
    assert (await put(client, alice, "API_KEY", VALUE)).status_code == 204
    assert (await put(client, alice, "OTHER", "first")).status_code == 204
    assert (await put(client, alice, "OTHER", "second")).status_code == 204  # replaced
    listed = await client.get("/v1/secrets", headers=alice)
    assert listed.status_code == 200 and VALUE not in listed.text and "second" not in listed.text
    items = listed.json()["items"]
    assert [i["name"] for i in items] == ["API_KEY", "OTHER"] and set(items[0]) == {"name", "created_at", "updated_at"}
    assert items[1]["updated_at"] > items[1]["created_at"]
    # Bob sees none of them and cannot delete them.
    assert (await client.get("/v1/secrets", headers=bob)).json() == {"items": []}
    gone = await client.delete("/v1/secrets/API_KEY", headers=bob)
    assert gone.status_code == 404 and gone.json()["type"] == "not-found"
    # Stored sealed: the value is nowhere in the row.
    row = pg_conn.execute("select value from user_secrets where owner_id = %s and name = 'API_KEY'", (a,)).fetchone()
    assert row is not None and VALUE.encode() not in bytes(row[0])
    assert (await client.delete("/v1/secrets/OTHER", headers=alice)).status_code == 204
    assert [i["name"] for i in (await client.get("/v1/secrets", headers=alice)).json()["items"]] == ["API_KEY"]


@pytest.mark.parametrize(
    ("name", "body", "type_"),
    [
        ("lower", {"value": "x"}, "invalid-secret-name"),
        ("1ABC", {"value": "x"}, "invalid-secret-name"),
        ("A" * 65, {"value": "x"}, "invalid-secret-name"),
        ("GOOD", {"value": ""}, "invalid-secret-value"),
        ("GOOD", {"value": "x" * 8193}, "invalid-secret-value"),
        ("GOOD", {"secret": "x"}, "invalid-request"),
    ],
)
async def test_put_refuses_bad_names_and_values(client: httpx.AsyncClient, make_user: Callable[..., str], name: str, body: dict[str, str], type_: str) -> None:
    auth = bearer(make_user())
    response = await client.put(f"/v1/secrets/{name}", json=body, headers=auth)
    assert response.status_code == 422 and response.json()["type"] == type_, response.text
    assert (await client.get("/v1/secrets", headers=auth)).json() == {"items": []}


def test_signed_in_users_can_list_names_but_never_read_values_through_the_data_api(pg_conn: psycopg.Connection[Any], make_user: Callable[..., str]) -> None:
    alice, bob = make_user(), make_user()
    for owner in (alice, bob):
        pg_conn.execute("insert into user_secrets (owner_id, name, value) values (%s, 'K', %s)", (owner, b"\x01" + b"\x00" * 40))
    with acting_as(pg_conn, "authenticated", alice):
        assert pg_conn.execute("select owner_id::text, name from user_secrets").fetchall() == [(alice, "K")]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg_conn.execute("select value from user_secrets")
    with acting_as(pg_conn, "authenticated", alice):
        assert pg_conn.execute("delete from user_secrets where owner_id = %s", (bob,)).rowcount == 0
        assert pg_conn.execute("update user_secrets set value = %s where owner_id = %s", (b"\x01" * 40, bob)).rowcount == 0
    with acting_as(pg_conn, "anon"), pytest.raises(psycopg.errors.InsufficientPrivilege):
        pg_conn.execute("select name from user_secrets")
    assert pg_conn.execute("select count(*) from user_secrets where owner_id = %s", (bob,)).fetchone() == (1,)


async def test_a_run_without_its_secret_is_refused_and_nothing_is_created(client: httpx.AsyncClient, make_user: Callable[..., str], api: ApiServer) -> None:
    auth = bearer(make_user())
    response = await client.post("/v1/runs", json={"source": source(api.url), "inputs": {"base": api.url}}, headers=auth)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "secret-not-found" and "API_KEY" in problem["detail"]
    assert problem["errors"][0]["path"] == "steps[0].http"
    assert (await client.get("/v1/runs", headers=auth)).json()["items"] == []
    assert api.requests == []


async def test_a_secret_reaches_the_server_and_appears_nowhere_else(
    client: httpx.AsyncClient, make_user: Callable[..., str], api: ApiServer, pg_conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = make_user()
    auth = bearer(owner)
    assert (await put(client, auth, "API_KEY", VALUE)).status_code == 204
    api.then(json_reply({"echo": f"you sent {VALUE}"}))  # a server that echoes what it got
    receiver = Receiver()
    try:
        started = await client.post(
            "/v1/runs", json={"source": source(api.url), "inputs": {"base": api.url}, "webhook_url": receiver.url}, headers=auth
        )
        assert started.status_code == 202, started.text
        run = await wait_finished(client, auth, started.json()["id"])
        assert run["status"] == "succeeded", run["error"]
        sent = api.requests[0]
        assert sent.headers["authorization"] == f"Bearer {VALUE}" and sent.path == f"/me?key={VALUE}"
        call = run["steps"][0]
        assert call["prompt"].startswith(f"GET {api.url}/me?key=[secret API_KEY]\nAuthorization: Bearer [secret API_KEY]")
        assert call["outputs"] == {"echo": "you sent [secret API_KEY]"}
        events = (await client.get(f"/v1/runs/{run['id']}/events", headers=auth)).text
        exports = [(await client.get(f"/v1/runs/{run['id']}/export", params={"format": f}, headers=auth)).text for f in ("json", "md")]
        for _ in range(100):  # the webhook goes out as the run ends
            if receiver.requests:
                break
            await __import__("asyncio").sleep(0.05)
        webhook = receiver.requests[0][2].decode()
        rows = pg_conn.execute(
            "select (select jsonb_agg(to_jsonb(s))::text from step_runs s where run_id = r.id),"
            " (select jsonb_agg(to_jsonb(e))::text from run_events e where run_id = r.id), to_jsonb(r)::text"
            " from runs r where id = %s",
            (run["id"],),
        ).fetchone()
        assert rows is not None
        for where, text in {"run": json.dumps(run), "events": events, "json export": exports[0], "md export": exports[1], "webhook": webhook,
                            "step rows": rows[0], "event rows": rows[1], "run row": rows[2], "logs": caplog.text}.items():
            assert VALUE not in text, where
        assert "[secret API_KEY]" in exports[1] and '"run.succeeded"' in webhook
    finally:
        receiver.stop()


async def test_a_secret_deleted_after_the_run_started_fails_the_step_naming_it(
    secret_stack: Services, make_user: Callable[..., str], api: ApiServer
) -> None:
    from orchestrate.engine.core import Engine
    from orchestrate.engine.kinds.http import HttpPolicy
    from orchestrate.engine.queue import InProcessQueue
    from orchestrate.engine.records import StepMessage
    from orchestrate.spec import parse_workflow

    owner = make_user()
    secrets = secret_stack.secrets
    assert secrets is not None
    await secrets.put(owner, "API_KEY", VALUE)
    # An engine of our own with no worker: the run starts, then the secret goes, then the step runs.
    engine = Engine(secret_stack.store, InProcessQueue(), MockProvider(0.0), secrets=secrets, http=HttpPolicy(allow_private=True))
    run = await engine.start(parse_workflow(source(api.url)), {"base": api.url}, owner_id=owner)
    assert await secrets.delete(owner, "API_KEY")
    assert await engine.process(StepMessage(run.id, "call"))
    after = await secret_stack.store.get_run(run.id)
    assert after is not None and after.status.value == "failed"
    error = after.steps["call"].error
    assert error is not None and error.type == "secret-not-found"
    assert error.message.startswith("secret API_KEY not found: set it with PUT /v1/secrets/API_KEY")
    assert api.requests == []
