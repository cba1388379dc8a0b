"""/v1/callbacks/{token}: an approval answered by whoever holds its signed callback URL
(another system, a chat bot), without an access token. The token works once, until it
expires; the database keeps only its hash."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from typing_extensions import Annotated

from ...engine.kinds import approval
from ...engine.records import now
from ...errors import ConflictError
from ..deps import Svc
from ..jsonbody import StrictJsonRoute
from ..problems import ApiProblem
from ..schemas import CallbackAnswer, CallbackRequest
from ._docs import problems

router = APIRouter(tags=["runs"], route_class=StrictJsonRoute)

USED = "this callback URL was used already, or its step no longer waits for an answer"


@router.post("/v1/callbacks/{token}", response_model=CallbackAnswer, responses=problems(404, 410))
async def answer_callback(token: Annotated[str, PathParam(max_length=200)], body: CallbackRequest, svc: Svc) -> dict[str, Any]:
    """Approve (`{"action": "approve", "fields": {...}}`) or reject (`{"action":
    "reject", "reason": "..."}`) the approval step whose callback URL this is. No
    `Authorization` header: the URL is the credential. A used URL answers 410
    `callback-used`, an expired one 410 `callback-expired`, an unknown one 404."""
    found = await svc.store.callback_step(approval.token_hash(token))
    if found is None:
        raise ApiProblem(404, "not-found", "no such callback URL")
    if found.expires_at is not None and found.expires_at <= now():
        raise ApiProblem(410, "callback-expired", f"this callback URL expired at {found.expires_at.isoformat()}")
    if found.status != "waiting":
        raise ApiProblem(410, "callback-used", USED)
    try:
        if body.action == "approve":
            run = await approval.answer(svc.engine, found.run_id, found.step_id, fields=body.fields, user_id=found.owner_id)
        else:
            run = await approval.answer(svc.engine, found.run_id, found.step_id, reason=body.reason, user_id=found.owner_id)
    except ConflictError:  # answered another way just now
        raise ApiProblem(410, "callback-used", USED) from None
    # Only what the caller needs: the run is the owner's to read.
    return {"run_id": run.id, "step_id": found.step_id, "status": run.steps[found.step_id].status.value}
