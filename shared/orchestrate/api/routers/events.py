"""/v1/runs/{id}/events: the run's progress log after a sequence number, as a
long-poll (JSON) or, under uvicorn, as a server-sent event stream.

A waiting request costs the database nothing of its own: it waits on the process's
shared poller (``RunWatch``) and reads its events once when its run moved."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ...db.connect import connection_lost
from ...db.store import PostgresStore
from ...db.watch import RunWatch
from ...engine.records import Event, RunStatus
from ..deps import CurrentUser, Svc
from ..jsonbody import StrictJsonRoute
from ..problems import ApiProblem
from ..schemas import EventPage
from ._docs import problems

log = logging.getLogger("orchestrate.api")
router = APIRouter(tags=["runs"], route_class=StrictJsonRoute)

MAX_WAIT = 25.0  # seconds; API Gateway cuts a request at 30
KEEP_ALIVE = 15.0  # seconds an idle SSE stream waits before a keep-alive comment

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problems(404),
    200: {
        "description": "The events (JSON), or a `text/event-stream` when asked for with `Accept`",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


async def run_status(store: PostgresStore, user_id: str, run_id: str) -> RunStatus | None:
    """The run's status as the caller sees it (RLS): None if it is not theirs."""
    async with store.transaction(user_id) as conn:
        cur = await conn.execute("select status from public.runs where id = %s", (run_id,))
        row = await cur.fetchone()
    return RunStatus(row[0]) if row else None


@router.get("/v1/runs/{run_id}/events", response_model=EventPage, responses=_RESPONSES)
async def run_events(
    run_id: UUID,
    request: Request,
    user: CurrentUser,
    svc: Svc,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only events with a greater `seq`")] = 0,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="Seconds to wait for the first new event (long-poll)")] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32, include_in_schema=False)] = None,
) -> Any:
    """Events with `seq > after`: `seq`, `type`, `step_id`, `data`, `created_at`."""
    rid = str(run_id)
    # Read the status first: if it says finished, every event is already written.
    status = await run_status(svc.store, user.id, rid)
    if status is None:
        raise ApiProblem(404, "not-found", f"run {run_id} not found")
    if _wants_stream(request):
        start = int(last_event_id) if last_event_id and last_event_id.isascii() and last_event_id.isdigit() else after
        return StreamingResponse(
            _stream(svc.store, svc.watch, user.id, rid, start, status, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    events = await svc.store.events(rid, after, user_id=user.id)
    if not events and not status.finished and await svc.watch.wait(rid, after, wait):
        events = await svc.store.events(rid, after, user_id=user.id)
    return {
        "events": [e.to_dict() for e in events],
        "next_after": events[-1].seq if events else after,
        "run_status": status,
        "finished": status.finished,
    }


def _wants_stream(request: Request) -> bool:
    # Behind API Gateway (Mangum) the response is buffered whole: long-poll there.
    return "text/event-stream" in request.headers.get("accept", "") and "aws.event" not in request.scope


async def _stream(
    store: PostgresStore, watch: RunWatch, user_id: str, run_id: str, after: int, status: RunStatus, request: Request
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    try:
        while True:
            events = await store.events(run_id, after, user_id=user_id)
            for event in events:
                after = event.seq
                yield _sse(event)
            if status.finished or await request.is_disconnected():
                return
            status = await run_status(store, user_id, run_id) or RunStatus.CANCELLED  # gone: end the stream
            if status.finished:
                continue  # the events written since the read above, then the end
            while not await watch.wait(run_id, after, KEEP_ALIVE):
                if watch.stopped or await request.is_disconnected():
                    return  # shutting down: the client reconnects with Last-Event-ID
                yield ": keep-alive\n\n"
    except Exception as exc:
        reason = connection_lost(exc)
        if reason is None:
            raise
        # The response is under way: end it; the client reconnects with Last-Event-ID.
        log.warning("events of run %s after %d: %s; the stream ends, the client reconnects", run_id, after, reason)


def _sse(event: Event) -> str:
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(event.to_dict(), ensure_ascii=False)}\n\n"
