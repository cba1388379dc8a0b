"""Deliveries made visible: GET /v1/runs/{id}/webhook-deliveries shows every attempt
(never the secret), POST .../redeliver sends the final event again with the same
`webhook-id`; another user's run is 404 to both, in the API and in the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from orchestrate.api import Services
from tests.api.conftest import bearer, wait_finished
from tests.fakes.receiver import Receiver

from .conftest import PAIR

Api = tuple[httpx.AsyncClient, Services]


async def _deliveries(client: httpx.AsyncClient, headers: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/runs/{run_id}/webhook-deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def _until(client: httpx.AsyncClient, headers: dict[str, str], run_id: str, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Deliveries are sent in the background as the run ends: wait for what we expect."""
    for _ in range(200):
        items = await _deliveries(client, headers, run_id)
        if done(items):
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries never got there: {items}")


async def _finished_run(client: httpx.AsyncClient, headers: dict[str, str], webhook_url: str | None) -> str:
    body = {"source": PAIR} | ({"webhook_url": webhook_url} if webhook_url else {})
    response = await client.post("/v1/runs", json=body, headers=headers)
    assert response.status_code == 202, response.text
    run = await wait_finished(client, headers, response.json()["id"])
    assert run["status"] == "succeeded"
    return str(run["id"])


def _attempted(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda items: sum(len(d["attempts"]) for d in items) >= n and all(d["status"] != "delivering" for d in items)


async def test_every_attempt_is_visible_and_a_redelivery_repeats_the_webhook_id(local_api: Api, make_user: Callable[..., str], receiver: Receiver) -> None:
    client, _ = local_api
    headers = bearer(make_user())
    secret = (await client.get("/v1/webhook-secret", headers=headers)).json()["secret"]
    receiver.then(500)
    run_id = await _finished_run(client, headers, receiver.url)

    [original] = await _until(client, headers, run_id, _attempted(1))
    assert original["status"] == "pending" and original["redelivery"] is False and original["event_type"] == "run.succeeded"
    assert original["url"] == receiver.url and original["next_attempt_at"] is not None
    [attempt] = original["attempts"]
    assert attempt["status_code"] == 500 and attempt["error"] == "answered 500" and attempt["next_attempt_at"] == original["next_attempt_at"]
    listed = await client.get(f"/v1/runs/{run_id}/webhook-deliveries", headers=headers)
    assert secret not in listed.text and secret.removeprefix("whsec_") not in listed.text

    response = await client.post(f"/v1/runs/{run_id}/webhook-deliveries/redeliver", headers=headers)
    assert response.status_code == 202, response.text
    fresh = response.json()
    assert fresh["webhook_id"] == original["webhook_id"] and fresh["id"] != original["id"] and fresh["redelivery"] is True
    items = await _until(client, headers, run_id, lambda items: items[0]["status"] == "succeeded")
    assert [d["id"] for d in items] == [fresh["id"], original["id"]]  # newest first
    assert items[0]["attempts"][0]["status_code"] == 204 and items[0]["attempts"][0]["error"] is None
    assert items[0]["next_attempt_at"] is None and items[0]["attempts"][0]["next_attempt_at"] is None

    # The receiver saw the same message twice, both verifiable: it can deduplicate by webhook-id.
    assert [h["webhook-id"] for _, h, _ in receiver.requests] == [original["webhook_id"]] * 2
    payloads = [Webhook(secret).verify(body, h) for _, h, body in receiver.requests]
    assert payloads[0] == payloads[1] and payloads[0]["data"]["id"] == run_id

    # One redelivery at a time: while one is pending, another is refused.
    receiver.then(500)
    assert (await client.post(f"/v1/runs/{run_id}/webhook-deliveries/redeliver", headers=headers)).status_code == 202
    await _until(client, headers, run_id, lambda items: len(items) == 3 and len(items[0]["attempts"]) == 1)
    again = await client.post(f"/v1/runs/{run_id}/webhook-deliveries/redeliver", headers=headers)
    assert again.status_code == 409 and again.json()["type"] == "conflict" and "already under way" in again.json()["detail"]


async def test_redelivery_needs_a_finished_run_with_a_webhook(local_api: Api, make_user: Callable[..., str], receiver: Receiver) -> None:
    client, _ = local_api
    headers = bearer(make_user())
    plain = await _finished_run(client, headers, None)
    assert await _deliveries(client, headers, plain) == []
    response = await client.post(f"/v1/runs/{plain}/webhook-deliveries/redeliver", headers=headers)
    assert response.status_code == 409 and "no webhook URL" in response.json()["detail"]

    waiting = await client.post("/v1/runs", json={"source": PAIR, "webhook_url": receiver.url, "mode": "step"}, headers=headers)
    run_id = waiting.json()["id"]
    response = await client.post(f"/v1/runs/{run_id}/webhook-deliveries/redeliver", headers=headers)
    assert response.status_code == 409 and "has not finished" in response.json()["detail"]
    assert await _deliveries(client, headers, run_id) == []
    await client.post(f"/v1/runs/{run_id}/cancel", headers=headers)  # leave nothing running


async def test_another_users_run_is_404_and_nothing_changes(local_api: Api, make_user: Callable[..., str], receiver: Receiver) -> None:
    client, services = local_api
    owner, other = make_user(), make_user()
    a, b = bearer(owner), bearer(other)
    run_id = await _finished_run(client, a, receiver.url)
    before = await _until(client, a, run_id, _attempted(1))
    for method, path in (("GET", ""), ("POST", "/redeliver")):
        for headers, rid in ((b, run_id), (a, "00000000-0000-4000-8000-000000000000")):
            response = await client.request(method, f"/v1/runs/{rid}/webhook-deliveries{path}", headers=headers)
            assert response.status_code == 404 and response.json()["type"] == "not-found", response.text
    bad = await client.get("/v1/runs/not-a-uuid/webhook-deliveries", headers=a)
    assert bad.status_code == 422 and bad.json()["type"] == "invalid-request"
    assert await _deliveries(client, a, run_id) == before

    # The database says the same to a user who calls the function directly, and refuses
    # a caller who is not a signed-in user at all.
    async with services.store.transaction(other) as conn:
        row = await (await conn.execute("select orchestrate.redeliver_webhook(%s)", (run_id,))).fetchone()
    assert row is not None and row[0] == {"status": "not-found"}
    for claims in (None, json.dumps({"role": "authenticated"}), json.dumps({"sub": owner, "role": "anon"})):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with services.store.transaction() as conn:
                await conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)", (claims or "",))
                await conn.execute("select orchestrate.redeliver_webhook(%s)", (run_id,))
    assert await _deliveries(client, a, run_id) == before
