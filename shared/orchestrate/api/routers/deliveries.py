"""/v1/runs/{id}/webhook-deliveries: every attempt of a run's webhook, and redelivery."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from ...webhooks.deliveries import redeliver, run_deliveries
from ..deps import CurrentUser, Svc
from ..problems import ApiProblem
from ..schemas import WebhookDeliveries, WebhookDelivery
from ._docs import problems

router = APIRouter(tags=["webhooks"])


@router.get("/v1/runs/{run_id}/webhook-deliveries", response_model=WebhookDeliveries, responses=problems(404))
async def list_webhook_deliveries(run_id: UUID, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """The run's webhook deliveries, newest first, each with every attempt (time,
    status code, error, next attempt)."""
    items = await run_deliveries(svc.store, str(run_id), user_id=user.id)
    if items is None:
        raise ApiProblem(404, "not-found", f"run {run_id} not found")
    return {"items": items}


@router.post("/v1/runs/{run_id}/webhook-deliveries/redeliver", status_code=202, response_model=WebhookDelivery, responses=problems(404, 409))
async def redeliver_webhook(run_id: UUID, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """Send the finished run's final event again, as a new delivery with the same
    `webhook-id` (receivers can deduplicate). 409 if the run has not finished, has no
    webhook URL, or a redelivery is already under way."""
    delivery = await redeliver(svc.store, str(run_id), user_id=user.id)
    if delivery is None:
        raise ApiProblem(404, "not-found", f"run {run_id} not found")
    if svc.engine.webhooks is not None:  # wake the sender; else the sweeper sends it
        await svc.engine.webhooks.run_finished(str(run_id))
    return delivery
