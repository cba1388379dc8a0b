"""Request dependencies: the caller (from the bearer token), the services, cursors."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .auth import Authenticator, User, unauthorized
from .problems import ApiProblem
from .services import Services

_bearer = HTTPBearer(auto_error=False, description="A Supabase Auth access token (or `orchestrate token` locally)")


async def current_user(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> User:
    if credentials is None:
        header = request.headers.get("authorization")
        raise unauthorized("send an access token: Authorization: Bearer <token>", missing=header is None)
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.verify(credentials.credentials)


async def services(request: Request) -> Services:
    services: Services = await request.app.state.holder.get()
    return services


CurrentUser = Annotated[User, Depends(current_user)]
Svc = Annotated[Services, Depends(services)]


def encode_cursor(created_at: dt.datetime, id: str) -> str:
    raw = json.dumps([created_at.isoformat(), id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, str] | None:
    """The (created_at, id) a cursor stands for; a 400 problem if it is not one of ours."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, id = json.loads(raw)
        when = dt.datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when, str(uuid.UUID(id))
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError, OverflowError):
        raise ApiProblem(400, "invalid-cursor", "the cursor is not valid: pass back a next_cursor exactly as received") from None
