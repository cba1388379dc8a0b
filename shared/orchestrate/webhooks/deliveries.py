"""Durable webhook deliveries. A finished run inserts its delivery in the same
transaction (see the run-protocol migration); this module sends it, records every
attempt, and reschedules with exponential backoff over hours, then gives up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..db.store import PostgresStore, valid_id
from .secrets import signing_secret
from .sender import Attempt, send

# Delay before attempt n+1 (seconds): 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h.
BACKOFF = (30, 120, 600, 1800, 3600, 7200, 14400, 28800)
LEASE = 60  # seconds a sender owns a delivery; a crashed sender's claim lapses then


@dataclass(frozen=True)
class Result:
    delivery_id: str
    status: str  # "succeeded" | "pending" (retry later) | "failed" | "skipped"
    attempt: Attempt | None = None


async def deliver(store: PostgresStore, delivery_id: str, *, allow_private: bool = False) -> Result:
    """Try one delivery if it is due and nobody else holds it; record the attempt."""
    if not valid_id(delivery_id):
        return Result(delivery_id, "skipped")
    async with store.transaction() as conn:
        cur = await conn.execute(
            "update public.webhook_deliveries set status = 'delivering', attempts = attempts + 1, "
            "next_attempt_at = now() + make_interval(secs => %s) "
            "where id = %s and ((status = 'pending' and next_attempt_at <= now()) or (status = 'delivering' and next_attempt_at < now())) "
            "returning owner_id::text, url, payload, attempts",
            (LEASE, delivery_id),
        )
        row = await cur.fetchone()
        if row is None:
            return Result(delivery_id, "skipped")  # not due, done, or being sent by another
        owner_id, url, payload, attempts = row
        if attempts > len(BACKOFF) + 1:  # earlier senders died mid-attempt, again and again
            await conn.execute(
                "update public.webhook_deliveries set status = 'failed', next_attempt_at = null, "
                "last_error = 'gave up: the sender did not finish its attempts' where id = %s",
                (delivery_id,),
            )
            return Result(delivery_id, "failed")
        secret = (await signing_secret(conn, owner_id))["secret"]
    attempt = await send(url, payload, secret=secret, message_id=delivery_id, allow_private=allow_private)
    now = dt.datetime.now(dt.UTC)
    if attempt.ok:
        status, next_at = "succeeded", None
    elif attempt.retryable and attempts <= len(BACKOFF):
        status, next_at = "pending", now + dt.timedelta(seconds=BACKOFF[attempts - 1])
    else:
        status, next_at = "failed", None
    async with store.transaction() as conn:
        from psycopg.types.json import Jsonb

        await conn.execute(
            "update public.webhook_deliveries set status = %s, next_attempt_at = %s, last_attempt_at = %s, "
            "last_status_code = %s, last_error = %s, attempt_log = attempt_log || %s where id = %s",
            (status, next_at, now, attempt.status_code, attempt.error, Jsonb([attempt.to_dict(now)]), delivery_id),
        )
    return Result(delivery_id, status, attempt)


async def due_deliveries(store: PostgresStore, limit: int = 100) -> list[str]:
    """Deliveries whose next attempt is due (or whose sender's lease lapsed)."""
    async with store.transaction() as conn:
        cur = await conn.execute(
            "select id::text from public.webhook_deliveries "
            "where (status = 'pending' and next_attempt_at <= now()) or (status = 'delivering' and next_attempt_at < now()) "
            "order by next_attempt_at limit %s",
            (limit,),
        )
        return [row[0] for row in await cur.fetchall()]


async def deliveries_of_run(store: PostgresStore, run_id: str) -> list[str]:
    if not valid_id(run_id):
        return []
    async with store.transaction() as conn:
        cur = await conn.execute("select id::text from public.webhook_deliveries where run_id = %s and status = 'pending'", (run_id,))
        return [row[0] for row in await cur.fetchall()]
