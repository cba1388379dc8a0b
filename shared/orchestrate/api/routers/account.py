"""/v1/webhook-secret (the caller's Standard Webhooks signing secret) and /v1/health."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from ...db.store import PostgresStore
from ...webhooks.secrets import signing_secret
from ..deps import CurrentUser, Svc
from ..jsonbody import StrictJsonRoute
from ..problems import ApiProblem
from ..schemas import Health, WebhookSecret
from ._docs import problems

router = APIRouter(route_class=StrictJsonRoute)

async def _secret(store: PostgresStore, user_id: str, *, rotate: bool) -> dict[str, Any]:
    async with store.transaction(user_id) as conn:
        return await signing_secret(conn, user_id, rotate=rotate)


@router.get("/v1/webhook-secret", response_model=WebhookSecret, tags=["webhooks"], responses=problems())
async def get_webhook_secret(user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """The secret that signs your webhooks (created on first request)."""
    return await _secret(svc.store, user.id, rotate=False)


@router.post("/v1/webhook-secret/rotate", response_model=WebhookSecret, tags=["webhooks"], responses=problems())
async def rotate_webhook_secret(user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """Replace the secret; webhooks are signed with the new one from now on."""
    return await _secret(svc.store, user.id, rotate=True)


@router.get("/v1/health", response_model=Health, tags=["health"], responses={503: problems()[503]})
async def health(request: Request) -> Health:
    """Liveness and database reachability. Needs no token."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        svc = await request.app.state.holder.get()
        async with svc.store.pool.connection(timeout=5) as conn:
            await asyncio.wait_for(conn.execute("select 1"), 5)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not healthy"
        raise ApiProblem(503, "database-unavailable", f"the database does not answer ({type(exc).__name__})") from None
    try:
        current = version("orchestrate")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        current = "unknown"
    return Health(status="ok", version=current, database="ok")
