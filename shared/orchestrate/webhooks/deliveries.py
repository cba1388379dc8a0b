"""Durable webhook deliveries. A finished run inserts its delivery in the same
transaction (see the run-protocol migration); this module sends it, records every
attempt, and reschedules with exponential backoff over hours, then gives up.

A delivery's failure stays that delivery's: whatever goes wrong while sending is a
recorded, failed attempt, never an exception that stops a sweep. A sweep takes due
deliveries round-robin across owners and sends them a few at a time, so one tenant's
backlog cannot hold back another tenant's due delivery."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..db.connect import connection_lost
from ..db.store import PostgresStore, valid_id
from ..errors import ConflictError
from .secrets import secret_problem, signing_secret
from .sender import Attempt, send
from ..net.ssrf import Resolver

log = logging.getLogger("orchestrate.webhooks")

# Delay before attempt n+1 (seconds): 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h.
BACKOFF = (30, 120, 600, 1800, 3600, 7200, 14400, 28800)
LEASE = 60  # seconds a sender owns a delivery; a crashed sender's claim lapses then
SWEEP_LIMIT = 100  # deliveries per sweep
PER_OWNER = 10  # of which at most this many of one owner's
CONCURRENCY = 16  # sent at once
LISTED = 100  # deliveries of a run shown, newest first

_DUE = "((status = 'pending' and next_attempt_at <= now()) or (status = 'delivering' and next_attempt_at < now()))"


@dataclass(frozen=True)
class Result:
    delivery_id: str
    status: str  # "succeeded" | "pending" (retry later) | "failed" | "skipped" | "error" (not recorded)
    attempt: Attempt | None = None


async def deliver(store: PostgresStore, delivery_id: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> Result:
    """Try one delivery if it is due and nobody else holds it; record the attempt.
    Raises only when the database fails (the attempt could not be recorded)."""
    if not valid_id(delivery_id):
        return Result(delivery_id, "skipped")
    async with store.transaction() as conn:
        cur = await conn.execute(
            "update public.webhook_deliveries set status = 'delivering', attempts = attempts + 1, "
            f"next_attempt_at = now() + make_interval(secs => %s) where id = %s and {_DUE} "
            "returning owner_id::text, url, payload, attempts, coalesce(message_id, id)::text",
            (LEASE, delivery_id),
        )
        row = await cur.fetchone()
        if row is None:
            return Result(delivery_id, "skipped")  # not due, done, or being sent by another
        owner_id, url, payload, attempts, message_id = row
        if attempts > len(BACKOFF) + 1:  # earlier senders died mid-attempt, again and again
            await conn.execute(
                "update public.webhook_deliveries set status = 'failed', next_attempt_at = null, "
                "last_error = 'gave up: the sender did not finish its attempts' where id = %s",
                (delivery_id,),
            )
            return Result(delivery_id, "failed")
        secret = (await signing_secret(conn, owner_id))["secret"]
    attempt = await _attempt(url, payload, secret, message_id, allow_private, resolver)
    now = dt.datetime.now(dt.UTC)
    if attempt.ok:
        status, next_at = "succeeded", None
    elif attempt.retryable and attempts <= len(BACKOFF):
        status, next_at = "pending", now + dt.timedelta(seconds=BACKOFF[attempts - 1])
    else:
        status, next_at = "failed", None
    async with store.transaction() as conn:
        await conn.execute(
            "update public.webhook_deliveries set status = %s, next_attempt_at = %s, last_attempt_at = %s, "
            "last_status_code = %s, last_error = %s, attempt_log = attempt_log || %s where id = %s",
            (status, next_at, now, attempt.status_code, attempt.error, Jsonb([attempt.to_dict(now, next_at)]), delivery_id),
        )
    return Result(delivery_id, status, attempt)


async def _attempt(url: str, payload: Any, secret: str, message_id: str, allow_private: bool, resolver: Resolver | None) -> Attempt:
    """One attempt; anything that goes wrong is a failed attempt, never an exception."""
    problem = secret_problem(secret)
    if problem is not None:  # the owner can fix it (rotate): worth retrying
        return Attempt(False, None, problem, retryable=True)
    try:
        return await send(url, payload, secret=secret, message_id=message_id, allow_private=allow_private, resolver=resolver)
    except Exception as exc:  # a bug of ours: keep it to this delivery, retry later
        log.exception("webhook %s: the attempt failed unexpectedly", message_id)
        return Attempt(False, None, f"the attempt failed inside Orchestrate ({type(exc).__name__}); it will be retried", retryable=True)


async def due_deliveries(store: PostgresStore, limit: int = SWEEP_LIMIT, *, per_owner: int = PER_OWNER) -> list[str]:
    """Deliveries whose next attempt is due (or whose sender's lease lapsed), taken in
    turns across owners (each owner's oldest first), at most ``per_owner`` of one owner."""
    async with store.transaction() as conn:
        cur = await conn.execute(
            "select id::text from ("
            " select id, next_attempt_at,"
            "  row_number() over (partition by owner_id order by next_attempt_at, id) as turn"
            f" from public.webhook_deliveries where {_DUE}"
            ") due where turn <= %s order by turn, next_attempt_at, id limit %s",
            (per_owner, limit),
        )
        return [row[0] for row in await cur.fetchall()]


async def deliver_due(
    store: PostgresStore,
    *,
    allow_private: bool = False,
    limit: int = SWEEP_LIMIT,
    per_owner: int = PER_OWNER,
    concurrency: int = CONCURRENCY,
    budget: float | None = None,
    resolver: Resolver | None = None,
) -> list[Result]:
    """One sweep of due deliveries, ``concurrency`` at a time in turn order. None
    starts after ``budget`` seconds (those stay due for the next sweep); a delivery
    whose attempt cannot be recorded is logged and does not stop the others."""
    due = await due_deliveries(store, limit, per_owner=per_owner)
    loop = asyncio.get_running_loop()
    deadline = None if budget is None else loop.time() + budget
    gate = asyncio.Semaphore(concurrency)

    async def one(delivery_id: str) -> Result:
        async with gate:
            if deadline is not None and loop.time() > deadline:
                return Result(delivery_id, "skipped")
            try:
                return await deliver(store, delivery_id, allow_private=allow_private, resolver=resolver)
            except Exception as exc:
                # A lost database is one line (the lease lapses, a later sweep retries);
                # anything else is a bug of ours, logged with its traceback.
                reason = connection_lost(exc)
                if reason is None:
                    log.exception("webhook %s: attempt not recorded", delivery_id)
                else:
                    log.warning("webhook %s: attempt not recorded, %s; a later sweep retries it", delivery_id, reason)
            return Result(delivery_id, "error")

    return list(await asyncio.gather(*(one(d) for d in due)))


async def deliveries_of_run(store: PostgresStore, run_id: str) -> list[str]:
    if not valid_id(run_id):
        return []
    async with store.transaction() as conn:
        cur = await conn.execute("select id::text from public.webhook_deliveries where run_id = %s and status = 'pending'", (run_id,))
        return [row[0] for row in await cur.fetchall()]


_COLUMNS = (
    "id, coalesce(message_id, id) as webhook_id, message_id is not null as redelivery, event_type, url, status, "
    "case when status = 'pending' then next_attempt_at end as next_attempt_at, attempt_log, created_at"
)


async def run_deliveries(store: PostgresStore, run_id: str, *, user_id: str) -> list[dict[str, Any]] | None:
    """The run's deliveries, newest first, as its owner sees them (RLS); None if the
    run is not theirs or does not exist. Secrets are not part of a delivery."""
    if not valid_id(run_id):
        return None
    async with store.transaction(user_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("select 1 from public.runs where id = %s", (run_id,))
        if await cur.fetchone() is None:
            return None
        await cur.execute(
            f"select {_COLUMNS} from public.webhook_deliveries where run_id = %s order by created_at desc, id desc limit %s",
            (run_id, LISTED),
        )
        return [_delivery(row) for row in await cur.fetchall()]


class Redelivery(ConflictError):
    """Why a run's webhook cannot be delivered again (``reason``: a slug); a 409."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_REFUSALS = {
    "not-finished": "the run has not finished: its webhook is sent when it does",
    "no-webhook": "the run has no webhook URL",
    "no-delivery": "no webhook was recorded for this run",
    "in-progress": "a redelivery of this run's webhook is already under way",
}


async def redeliver(store: PostgresStore, run_id: str, *, user_id: str) -> dict[str, Any] | None:
    """A fresh delivery of the run's final event, with the same ``webhook-id`` (so a
    receiver can deduplicate). None if the run is not the caller's; Redelivery if the
    run's state does not allow it. The database derives everything from the run id."""
    if not valid_id(run_id):
        return None
    async with store.transaction(user_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("select orchestrate.redeliver_webhook(%s) as result", (run_id,))
        row = await cur.fetchone()
        assert row is not None
        result = row["result"]
        if result["status"] == "not-found":
            return None
        if result["status"] != "created":
            raise Redelivery(result["status"], _REFUSALS[result["status"]])
        await cur.execute(f"select {_COLUMNS} from public.webhook_deliveries where id = %s", (result["id"],))
        created = await cur.fetchone()
    assert created is not None
    return _delivery(created)


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    log_ = row.pop("attempt_log") or []
    row["attempts"] = [
        {
            "at": a.get("at"),
            "status_code": a.get("status_code"),
            "error": a.get("error"),
            "next_attempt_at": a.get("next_attempt_at"),  # absent in attempts recorded before it was
        }
        for a in log_
        if isinstance(a, dict)
    ]
    return row
