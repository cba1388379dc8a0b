"""Pure ASGI middleware: a request body cap, and the last line of defence that turns
any unexpected exception into a generic 500 problem (logged, never shown)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import PROBLEM_JSON

log = logging.getLogger("orchestrate.api")

MAX_BODY = 1024 * 1024  # bytes; a workflow file is at most 1 MiB too


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit // 1024} KiB")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes: at once when Content-Length says so, else
    as soon as the stream passes it (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            status = 413 if declared.isdigit() else 400
            detail = BodyTooLarge(self.limit).detail if status == 413 else "invalid Content-Length header"
            await _send_problem(scope, send, status, "payload-too-large" if status == 413 else "bad-request", detail)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException: FastAPI re-raises it untouched while reading the body.
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


class CatchAll:
    """Outermost middleware: whatever escapes the app's handlers is logged with its
    traceback and answered with a 500 (503 for a lost database) problem without it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:  # noqa: BLE001 - this is the catch-all by design
            from ..db.connect import connection_lost

            reason = connection_lost(exc)
            if reason is not None:  # handled: one line, no traceback
                log.error("%s %s: %s", scope.get("method"), scope.get("path"), reason)
                status, slug, detail = 503, "database-unavailable", "the database is unavailable; try again shortly"
            else:
                log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
                status, slug, detail = 500, "internal-error", "the server could not handle the request"
            if not started:
                await _send_problem(scope, send, status, slug, detail)
            # A response already under way (a stream) can only be cut short.


async def _send_problem(scope: Scope, send: Send, status: int, slug: str, detail: str) -> None:
    from http import HTTPStatus

    body: dict[str, Any] = {"type": slug, "title": HTTPStatus(status).phrase, "status": status, "detail": detail, "instance": scope.get("path")}
    raw = json.dumps(body).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
