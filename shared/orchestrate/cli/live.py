"""Follow a run through Supabase Realtime: its events are pushed on the private topic
``run:<run_id>`` (broadcast by the database, see the realtime_broadcast migration).

Subscribe first, then read the events after the last seen ``seq`` from the API, so no
event falls between the two; every (re)subscription and every gap in ``seq`` catches up
the same way, and events are de-duplicated by ``seq``. ``run_events`` stays the source
of truth: a push is only a faster way to learn of a row. The access token is pushed on
the channel (``access_token``) before it expires, when a fresher one can be had.

A refused join (another user's run, an expired or forged token) ends with
``LiveRefused``; a Realtime service that cannot be reached raises ``LiveUnavailable``
before anything was shown, so the caller can fall back to long-polling."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..engine.records import Event
from ..errors import OrchestrateError

RECONCILE = 15.0  # seconds without a push after which the API is asked anyway
JOIN_TIMEOUT = 10  # seconds the Realtime service has to answer a join
RECONNECT_TRIES = 8  # the client's backoff doubles from 1 s: about 4 minutes in all


class LiveRefused(OrchestrateError):
    type = "realtime-refused"


class LiveUnavailable(OrchestrateError):
    type = "realtime-unavailable"


@dataclass(frozen=True)
class RealtimeConfig:
    """Where the project's Realtime is: the Supabase URL and its publishable (anon) key."""

    url: str
    publishable_key: str


Fetch = Callable[[int], Awaitable[dict[str, Any]]]  # after -> an events page of the API
Tokens = Callable[[], Awaitable[str | None]]  # a fresher access token, or None


def token_expiry(token: str) -> tuple[float, float] | None:
    """(iat, exp) of a JWT, read without verifying it (the server verifies)."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        exp = float(claims["exp"])
        return float(claims.get("iat", exp - 3600)), exp
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
        return None


def refresh_delay(token: str, now: float) -> float | None:
    """Seconds until ``token`` should be replaced: a quarter of its life (at most a
    minute) before it expires."""
    times = token_expiry(token)
    if times is None:
        return None
    iat, exp = times
    return max(0.0, exp - now - min(60.0, (exp - iat) / 4))


def to_event(run_id: str, e: dict[str, Any]) -> Event:
    return Event(run_id, int(e["seq"]), str(e["type"]), e.get("step_id"), e.get("data") or {}, dt.datetime.fromisoformat(str(e["created_at"])))


async def follow(
    config: RealtimeConfig,
    run_id: str,
    token: str,
    fetch: Fetch,
    on_event: Callable[[Event], None],
    *,
    fresh_token: Tokens | None = None,
    after: int = 0,
) -> int:
    """Deliver the run's events after ``after`` to ``on_event`` in ``seq`` order, once
    each, until the API says the run has finished; return the last ``seq``."""
    from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

    signals: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    # One quick attempt to connect (the caller falls back to long-polling), then the
    # client's own reconnection with backoff once we are in.
    client = AsyncRealtimeClient(f"{config.url}/realtime/v1", token=config.publishable_key, timeout=JOIN_TIMEOUT, max_retries=1)
    await client.set_auth(token)
    channel = client.channel(
        f"run:{run_id}",
        {"config": {"private": True, "broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False}}},
    )
    channel.on_broadcast("*", lambda message: signals.put_nowait(("event", message.get("payload"))))

    def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
        signals.put_nowait(("state", (state, error)))

    last = after
    refresher: asyncio.Task[None] | None = None
    try:
        try:
            await channel.subscribe(on_state)
        except Exception as exc:  # the socket could not be opened: nothing shown yet
            raise LiveUnavailable(f"cannot reach Realtime at {config.url} ({type(exc).__name__})") from None
        client.max_retries = RECONNECT_TRIES
        if fresh_token is not None:
            refresher = asyncio.create_task(_refresh(client, token, fresh_token))
        subscribed_once = False
        while True:
            try:
                kind, value = await asyncio.wait_for(signals.get(), RECONCILE)
            except TimeoutError:
                kind, value = "reconcile", None
            if kind == "state":
                state, error = value
                if state == RealtimeSubscribeStates.SUBSCRIBED:
                    subscribed_once = True
                elif state == RealtimeSubscribeStates.CHANNEL_ERROR and (reason := _refusal(error)):
                    raise LiveRefused(_explain(reason, run_id))
                elif state == RealtimeSubscribeStates.TIMED_OUT and not subscribed_once:
                    raise LiveUnavailable(f"Realtime at {config.url} did not answer the join")
                elif state == RealtimeSubscribeStates.CLOSED:
                    raise LiveRefused(f"Realtime closed the subscription to run {run_id}")
                if state != RealtimeSubscribeStates.SUBSCRIBED:
                    continue  # a dropped socket: the client reconnects and rejoins
            elif kind == "event" and isinstance(value, dict) and "seq" in value:
                seq = int(value["seq"])
                if seq <= last:
                    continue  # already shown
                if seq == last + 1:
                    on_event(to_event(run_id, value))
                    last = seq
                    if not str(value.get("type", "")).startswith("run."):
                        continue  # only a run event can finish the run: ask the API then
            # (re)subscribed, a gap, a run event, or a quiet spell: the log decides
            while True:
                page = await fetch(last)
                for e in page["events"]:
                    if int(e["seq"]) > last:
                        on_event(to_event(run_id, e))
                        last = int(e["seq"])
                if not (page["finished"] and page["events"]):
                    break  # a finished run's log is read to its end, page by page
            if page["finished"]:
                return last
    finally:
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        with contextlib.suppress(Exception):
            await client.remove_all_channels()
        with contextlib.suppress(Exception):
            await client.close()


async def _refresh(client: Any, token: str, fresh_token: Tokens) -> None:
    """Push a fresher access token on the channel before the current one expires."""
    while True:
        delay = refresh_delay(token, time.time())
        if delay is None:
            return
        await asyncio.sleep(delay)
        new = await fresh_token()
        if not new or new == token:
            return  # none to be had: Realtime ends the channel at expiry, and we say so
        token = new
        await client.set_auth(token)


def _refusal(error: Exception | None) -> str | None:
    """The server's reason when the join was refused (a JSON reply), None when the
    error is the connection's (the client reconnects)."""
    if error is None:
        return None
    try:
        payload = json.loads(str(error))
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    reason = payload.get("reason") or payload.get("message")
    return str(reason) if reason else None


def _explain(reason: str, run_id: str) -> str:
    if "expired" in reason.lower():
        return f"Realtime refused the access token ({reason}): get a new one with `orchestrate token`, or sign in again"
    if reason.startswith("Unauthorized"):
        return f"Realtime refused to show run {run_id} ({reason}): it is not yours, or it does not exist"
    return f"Realtime refused the subscription to run {run_id} ({reason})"


def page_fetcher(http: httpx.AsyncClient, run_id: str, headers: Callable[[], dict[str, str]]) -> Fetch:
    """Read the events after a seq from the API (no waiting: pushes say when to ask)."""

    async def fetch(after: int) -> dict[str, Any]:
        response = await http.get(f"/v1/runs/{run_id}/events", params={"after": after}, headers=headers())
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        return page

    return fetch
