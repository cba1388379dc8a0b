"""Webhooks as a receiver sees them: Standard Webhooks signatures that the
`standardwebhooks` library verifies, retries with every attempt recorded, and an
SSRF guard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from standardwebhooks.webhooks import Webhook

from orchestrate.db.store import PostgresStore
from orchestrate.engine.core import Engine
from orchestrate.engine.queue import InProcessQueue
from orchestrate.llm import MockProvider
from orchestrate.spec import parse_workflow
from orchestrate.webhooks.deliveries import deliver, deliveries_of_run
from orchestrate.webhooks.local import InlineWebhooks
from orchestrate.webhooks.ssrf import UnsafeURL, resolve
from tests.fakes.receiver import Receiver

from .conftest import PAIR, delivery_row, finished_run, secret_of


async def test_a_finished_run_sends_a_verifiable_signed_webhook(store: PostgresStore, make_user: Callable[..., str], receiver: Receiver) -> None:
    owner = make_user()
    run_id = await finished_run(store, owner, receiver.url)
    [delivery_id] = await deliveries_of_run(store, run_id)
    result = await deliver(store, delivery_id, allow_private=True)
    assert result.status == "succeeded"
    [(path, headers, body)] = receiver.requests
    payload = Webhook(await secret_of(store, owner)).verify(body, headers)  # raises if the signature is wrong
    assert path == "/hook" and headers["webhook-id"] == delivery_id
    assert payload["type"] == "run.succeeded"
    assert payload["data"]["id"] == run_id and payload["data"]["status"] == "succeeded"
    assert set(payload["data"]["outputs"]) == {"a", "b"} and payload["data"]["usage"]["total_tokens"] > 0
    row = await delivery_row(store, delivery_id)
    assert row["status"] == "succeeded" and row["attempts"] == 1 and row["code"] == 204 and len(row["log"]) == 1
    assert (await deliver(store, delivery_id, allow_private=True)).status == "skipped"  # never sent twice
    assert len(receiver.requests) == 1


async def test_a_failing_receiver_is_retried_later_and_every_attempt_recorded(store: PostgresStore, make_user: Callable[..., str], receiver: Receiver) -> None:
    owner = make_user()
    [delivery_id] = await deliveries_of_run(store, await finished_run(store, owner, receiver.url))
    receiver.then(500)
    assert (await deliver(store, delivery_id, allow_private=True)).status == "pending"
    row = await delivery_row(store, delivery_id)
    assert row["status"] == "pending" and row["later"] and row["code"] == 500 and row["error"] == "answered 500"
    assert (await deliver(store, delivery_id, allow_private=True)).status == "skipped"  # not due yet
    async with store.transaction() as conn:
        await conn.execute("update public.webhook_deliveries set next_attempt_at = now() where id = %s", (delivery_id,))
    assert (await deliver(store, delivery_id, allow_private=True)).status == "succeeded"
    row = await delivery_row(store, delivery_id)
    assert row["attempts"] == 2 and [a["status_code"] for a in row["log"]] == [500, 204]
    assert len({json.loads(b)["data"]["id"] for _, _, b in receiver.requests}) == 1


async def test_redirects_are_not_followed(store: PostgresStore, make_user: Callable[..., str], receiver: Receiver) -> None:
    owner = make_user()
    [delivery_id] = await deliveries_of_run(store, await finished_run(store, owner, receiver.url))
    receiver.then(302, {"location": receiver.url.replace("/hook", "/elsewhere")})
    result = await deliver(store, delivery_id, allow_private=True)
    assert result.status == "pending" and result.attempt is not None and result.attempt.error == "redirects are not followed"
    assert [path for path, _, _ in receiver.requests] == ["/hook"]


async def test_a_private_target_is_refused_for_good(store: PostgresStore, make_user: Callable[..., str], receiver: Receiver) -> None:
    owner = make_user()
    [delivery_id] = await deliveries_of_run(store, await finished_run(store, owner, receiver.url))
    result = await deliver(store, delivery_id)  # private targets not allowed
    assert result.status == "failed" and "is not public" in (result.attempt.error or "")  # type: ignore[union-attr]
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/hook", "not public: a loopback address"),
        ("http://localhost:8080/hook", "not public: a loopback name"),
        ("http://10.1.2.3/hook", "not public: a private address"),
        ("http://169.254.169.254/latest/meta-data", "not public: a cloud metadata address"),
        ("http://[::ffff:127.0.0.1]/hook", "IPv4-mapped address carrying 127.0.0.1"),
        ("http://[2002:a00:1::]/hook", "6to4 address carrying 10.0.0.1"),
        ("ftp://example.com/hook", "must start with http:// or https://"),
        ("http://user:pw@example.com/hook", "credentials"),
        ("http:///nohost", "no host"),
    ],
)
async def test_the_sender_refuses_non_public_targets(url: str, message: str) -> None:
    with pytest.raises(UnsafeURL, match=message):
        await resolve(url)


async def test_private_targets_only_with_the_explicit_setting() -> None:
    target = await resolve("http://127.0.0.1:9/hook", allow_private=True)
    assert target.address == "127.0.0.1" and target.url == "http://127.0.0.1:9/hook"
    with pytest.raises(UnsafeURL):
        await resolve("http://224.0.0.1/hook", allow_private=True)  # multicast: never


async def test_the_engine_wakes_the_sender_when_a_run_ends(store: PostgresStore, make_user: Callable[..., str], receiver: Receiver) -> None:
    owner = make_user()
    webhooks = InlineWebhooks(store, allow_private=True)
    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider(), webhooks=webhooks)
    run = await engine.start(parse_workflow(PAIR), {}, owner_id=owner, webhook_url=receiver.url)
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    await webhooks.drain()
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0][2])["data"]["id"] == run.id


async def test_orchestrate_serve_stack_sends_webhooks_when_runs_end(pg_url: str, make_user: Callable[..., str], receiver: Receiver) -> None:
    from orchestrate.api.services import local_stack
    from orchestrate.engine.decide import Action

    owner = make_user()
    async with local_stack(pg_url, MockProvider(0.0), sweep=False, allow_private_webhooks=True) as services:
        done = await services.engine.start(parse_workflow(PAIR), {}, owner_id=owner, webhook_url=receiver.url)
        for _ in range(100):
            run = await services.store.get_run(done.id)
            if run is not None and run.status.finished:
                break
            await asyncio.sleep(0.05)
        # A run whose steps nobody takes (a queue no worker reads), cancelled through the API's engine.
        idle = Engine(services.store, InProcessQueue(), MockProvider())
        waiting = await idle.start(parse_workflow(PAIR), {}, owner_id=owner, webhook_url=receiver.url)
        await services.engine.control(waiting.id, Action.CANCEL)
        for _ in range(100):
            if len(receiver.requests) == 2:
                break
            await asyncio.sleep(0.05)
    kinds = sorted(json.loads(body)["type"] for _, _, body in receiver.requests)
    assert kinds == ["run.cancelled", "run.succeeded"]


async def test_a_waiting_approval_sends_run_waiting_then_the_final_webhook(store: PostgresStore, make_user: Callable[..., str], receiver: Receiver) -> None:
    from orchestrate.engine.kinds import approval
    from orchestrate.webhooks.deliveries import redeliver

    owner = make_user()
    webhooks = InlineWebhooks(store, allow_private=True)
    queue = InProcessQueue()
    engine = Engine(store, queue, MockProvider(), webhooks=webhooks, api_url="https://orchestrate.example")
    gate = "name: gate\nsteps:\n  - {id: a, prompt: hi}\n  - id: ask\n    needs: a\n    approval: {message: 'Go on after {{ steps.a.output }}?'}\n"
    run = await engine.start(parse_workflow(gate), {}, owner_id=owner, webhook_url=receiver.url)
    while not queue._queue.empty():
        await engine.process(queue._queue.get_nowait())
    await webhooks.drain()
    [(_, headers, body)] = receiver.requests
    waiting = Webhook(await secret_of(store, owner)).verify(body, headers)
    assert waiting["type"] == "run.waiting" and waiting["data"]["status"] == "running" and waiting["data"]["step_id"] == "ask"
    assert waiting["data"]["waiting"]["message"].startswith("Go on after Mock answer")
    callback = waiting["data"]["waiting"]["callback_url"]
    assert callback.startswith("https://orchestrate.example/v1/callbacks/")
    # Only a hash of the token is kept with the step.
    token = callback.rsplit("/", 1)[1]
    async with store.transaction() as conn:
        row = await (await conn.execute("select callback_hash from public.step_runs where run_id = %s and step_id = 'ask'", (run.id,))).fetchone()
    assert row is not None and row[0] == approval.token_hash(token) and token not in str(await store.get_run(run.id))

    await approval.answer(engine, run.id, "ask", user_id=owner)
    await webhooks.drain()
    final = json.loads(receiver.requests[1][2])
    assert final["type"] == "run.succeeded" and receiver.requests[1][1]["webhook-id"] != headers["webhook-id"]
    # A redelivery repeats the final event, not the waiting one.
    created = await redeliver(store, run.id, user_id=owner)
    assert created is not None
    await webhooks.sweep(budget=5)
    assert json.loads(receiver.requests[-1][2])["type"] == "run.succeeded"
