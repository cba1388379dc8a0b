"""One tenant cannot stop everyone's webhooks: a delivery that used to raise (a host
label over 63 characters, a bug while sending, a secret its owner rewrote into
something that cannot sign) is a recorded, failed attempt of that delivery only, and a
sweep takes due deliveries in turns across owners, so another tenant's due delivery is
attempted in the same sweep however long one tenant's backlog is."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from orchestrate.db.store import PostgresStore
from orchestrate.webhooks.deliveries import Result, deliver, deliver_due, deliveries_of_run, due_deliveries
from orchestrate.webhooks.secrets import new_secret, signing_secret
from tests.fakes.receiver import Receiver

from .conftest import delivery_row, finished_run, secret_of

LONG_LABEL = "http://" + "a" * 64 + ".example.com/hook"  # stored before URLs were checked
BOOM = "http://boom.example.com/hook"


async def _boom(host: str, port: int) -> list[str]:
    """The lookup for BOOM raises what no one foresaw (a bug of ours, say)."""
    if host == "boom.example.com":
        raise RuntimeError("unforeseen")
    raise AssertionError(f"no lookup expected for {host}")


async def _park_other_owners(store: PostgresStore, owners: list[str]) -> None:
    """Due deliveries other tests left behind wait: this sweep is about these owners."""
    async with store.transaction() as conn:
        await conn.execute(
            "update public.webhook_deliveries set next_attempt_at = now() + interval '1 day' "
            "where status in ('pending', 'delivering') and owner_id <> all(%s::uuid[])",
            (owners,),
        )


async def _poison_secret(store: PostgresStore, owner: str) -> None:
    """A secret the owner wrote through the Data API before the table checked them."""
    async with store.transaction() as conn:
        cur = await conn.execute("select pg_get_constraintdef(oid) from pg_constraint where conname = 'webhook_secrets_secret_check'")
        row = await cur.fetchone()
        assert row is not None
        await conn.execute("alter table public.webhook_secrets drop constraint webhook_secrets_secret_check")
        await conn.execute(
            "insert into public.webhook_secrets (owner_id, secret) values (%s, 'whsec_not a key!') "
            "on conflict (owner_id) do update set secret = excluded.secret",
            (owner,),
        )
        await conn.execute(f"alter table public.webhook_secrets add constraint webhook_secrets_secret_check {row[0]}")


async def _backlog(store: PostgresStore, owner: str, run_id: str, n: int) -> list[str]:
    """``n`` due deliveries older than anything else, alternating BOOM and LONG_LABEL."""
    async with store.transaction() as conn:
        await conn.execute(
            "update public.webhook_deliveries set url = %s, next_attempt_at = now() - interval '1 day' where run_id = %s",
            (BOOM, run_id),
        )
        cur = await conn.execute(
            "insert into public.webhook_deliveries (owner_id, run_id, event_type, url, payload, next_attempt_at) "
            "select %s, %s, 'run.succeeded', case when n %% 2 = 1 then %s else %s end, '{\"type\": \"run.succeeded\"}', "
            "now() - interval '1 day' + make_interval(secs => n) from generate_series(1, %s) n returning id::text",
            (owner, run_id, LONG_LABEL, BOOM, n),
        )
        return [row[0] for row in await cur.fetchall()]


async def test_a_poisoned_tenant_with_a_backlog_does_not_stop_another_tenants_delivery(
    store: PostgresStore, make_user: Callable[..., str], receiver: Receiver
) -> None:
    a, b, c = make_user(), make_user(), make_user()
    run_a = await finished_run(store, a, BOOM)
    await _backlog(store, a, run_a, 12)
    run_c = await finished_run(store, c, receiver.url)
    await _poison_secret(store, c)
    run_b = await finished_run(store, b, receiver.url)  # the newest due delivery of all
    await _park_other_owners(store, [a, b, c])
    [b_delivery] = await deliveries_of_run(store, run_b)
    [c_delivery] = await deliveries_of_run(store, run_c)
    async with store.transaction() as conn:  # oldest first, B's would not be among the first six
        cur = await conn.execute("select owner_id::text from public.webhook_deliveries where status = 'pending' and next_attempt_at <= now() order by next_attempt_at limit 6")
        assert {row[0] for row in await cur.fetchall()} == {a}

    results = await deliver_due(store, allow_private=True, limit=6, per_owner=3, concurrency=2, resolver=_boom)

    by_id = {r.delivery_id: r for r in results}
    assert by_id[b_delivery].status == "succeeded"
    [(_, headers, body)] = receiver.requests  # B's, and only B's: C's secret cannot sign
    Webhook(await secret_of(store, b)).verify(body, headers)
    assert headers["webhook-id"] == b_delivery
    assert by_id[c_delivery].status == "pending"
    assert "not a valid whsec_ key" in ((await delivery_row(store, c_delivery))["error"] or "")
    attempted_a = [r for r in results if r.delivery_id not in (b_delivery, c_delivery)]
    assert len(attempted_a) == 3  # A's share of this sweep
    for result in attempted_a:
        row = await delivery_row(store, result.delivery_id)
        assert row["attempts"] == 1 and len(row["log"]) == 1
        error = row["error"] or ""
        if result.status == "failed":  # never sent: the URL can never be valid
            assert "a label of 64 characters" in error
        else:  # a bug of ours: retried later
            assert result.status == "pending" and "failed inside Orchestrate (RuntimeError)" in error and row["later"]

    # C rotates the secret (the API does this): the next attempt signs and is delivered.
    async with store.transaction(c) as conn:
        await signing_secret(conn, c, rotate=True)
    async with store.transaction() as conn:
        await conn.execute("update public.webhook_deliveries set next_attempt_at = now() where id = %s", (c_delivery,))
    assert (await deliver(store, c_delivery, allow_private=True)).status == "succeeded"
    Webhook(await secret_of(store, c)).verify(receiver.requests[-1][2], receiver.requests[-1][1])


async def test_due_deliveries_take_turns_across_owners(store: PostgresStore, make_user: Callable[..., str]) -> None:
    a, b = make_user(), make_user()
    run_a = await finished_run(store, a, BOOM)
    [a_first] = await deliveries_of_run(store, run_a)
    backlog = await _backlog(store, a, run_a, 5)  # all older than B's
    run_b = await finished_run(store, b, BOOM)
    [b_delivery] = await deliveries_of_run(store, run_b)
    await _park_other_owners(store, [a, b])
    due = await due_deliveries(store, limit=10, per_owner=2)
    assert due == [a_first, b_delivery, backlog[0]]  # each owner's oldest, then the next turn


async def test_an_owner_cannot_write_a_secret_that_cannot_sign(store: PostgresStore, make_user: Callable[..., str]) -> None:
    owner = make_user()
    for bad in ("whsec_abc", "not-a-secret", "whsec_" + "A" * 20 + "==", "whsec_" + "A" * 43 + "!", "whsec_" + "A" * 200):
        with pytest.raises(psycopg.errors.CheckViolation):
            async with store.transaction(owner) as conn:  # as the owner, through the Data API's role
                await conn.execute("insert into public.webhook_secrets (owner_id, secret) values (%s, %s)", (owner, bad))
    async with store.transaction(owner) as conn:
        await conn.execute("insert into public.webhook_secrets (owner_id, secret) values (%s, %s)", (owner, new_secret()))
    with pytest.raises(psycopg.errors.CheckViolation):
        async with store.transaction(owner) as conn:
            await conn.execute("update public.webhook_secrets set secret = 'whsec_nope' where owner_id = %s", (owner,))


async def test_a_database_lost_mid_sweep_is_one_log_line_and_the_delivery_stays_due(
    pg_url: str, store: PostgresStore, pg_conn: psycopg.Connection[Any], make_user: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    owner = make_user()
    [delivery] = await deliveries_of_run(store, await finished_run(store, owner, "http://lost.example.com:9/hook"))
    await _park_other_owners(store, [owner])
    lone = await PostgresStore.open(pg_url, max_size=1)  # one connection: the one the sweep records with
    try:
        async with lone.pool.connection() as conn:
            pid = conn.info.backend_pid

        async def lose_the_database(host: str, port: int) -> list[str]:
            """While the attempt is under way, the server drops the sweep's connection
            (the attempt itself is refused: nothing listens on loopback's port 9)."""
            pg_conn.execute("select pg_terminate_backend(%s)", (pid,))
            return ["127.0.0.1"]

        with caplog.at_level(logging.WARNING, logger="orchestrate.webhooks"):
            [result] = await deliver_due(lone, allow_private=True, resolver=lose_the_database)
    finally:
        await lone.close()

    assert result == Result(delivery, "error")
    [record] = [r for r in caplog.records if r.name == "orchestrate.webhooks"]
    line = record.getMessage()
    assert record.levelname == "WARNING" and record.exc_info is None and "\n" not in line, line
    assert line.startswith(f"webhook {delivery}: attempt not recorded, database unavailable (OperationalError: ") and "server closed the connection" in line, line
    row = await delivery_row(store, delivery)
    assert row["status"] == "delivering" and row["attempts"] == 1 and row["later"]  # the lease lapses, then a sweep retries it
