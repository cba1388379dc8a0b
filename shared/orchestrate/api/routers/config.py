"""/v1/config: what a client must know before it signs in (public, no token): the
auth mode, the Supabase project URL and publishable key, whether Realtime pushes run
progress and whether exports can be stored. Only public values: never a secret key,
the JWT secret or Storage credentials."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from ...settings import Settings
from ..deps import Svc
from ..jsonbody import StrictJsonRoute
from ..schemas import PublicConfig

router = APIRouter(tags=["auth"], route_class=StrictJsonRoute)

CACHE = "public, max-age=60"
_BROADCAST_TTL = 60.0  # seconds the trigger check is trusted (the endpoint is public)


@router.get("/v1/config", response_model=PublicConfig)
async def public_config(request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    """The client's configuration; needs no token."""
    from ...cli.devauth import links_enabled

    settings: Settings = request.app.state.settings
    project = None
    if settings.supabase_url and settings.supabase_publishable_key:
        project = {"url": settings.supabase_url, "publishable_key": settings.supabase_publishable_key}
    response.headers["Cache-Control"] = CACHE
    return {
        # Local links only where the server signs its own tokens and no project is named:
        # a project with a publishable key (a local `supabase start` one included) signs
        # users in with Supabase Auth.
        "auth_mode": "local" if links_enabled(settings) and project is None else "supabase",
        "supabase": project,
        "realtime": project is not None and await _broadcasting(request, svc),
        "stored_exports": settings.stores_exports,
    }


async def _broadcasting(request: Request, svc: Svc) -> bool:
    """Whether the database broadcasts run events (the realtime_broadcast migration found
    Supabase Realtime's schema), checked at most once a minute."""
    cached: tuple[float, bool] | None = getattr(request.app.state, "broadcasting", None)
    now = time.monotonic()
    if cached is not None and now - cached[0] < _BROADCAST_TTL:
        return cached[1]
    async with svc.store.transaction() as conn:
        cur = await conn.execute(
            "select exists (select 1 from pg_trigger where tgrelid = 'public.run_events'::regclass and tgname = 'run_events_broadcast')"
        )
        row = await cur.fetchone()
    found = bool(row and row[0])
    request.app.state.broadcasting = (now, found)
    return found
