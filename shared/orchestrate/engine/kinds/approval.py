"""An approval step: the run waits for a person (or a system holding the step's signed
callback URL) to approve with the declared fields or to reject with a reason, or for
its timeout. The step parks; the answer comes through ``Engine.resolve``."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import AnswerError, ConflictError, NotFound, TemplateError
from ...spec.inputs import field_problems
from ...spec.model import Step
from ...templates import render_async
from .. import decide, on_error
from ..records import ErrorInfo, RunState, StepStatus, Usage, now
from ..store import Claim, Failure, Outcome, Park, Success

if TYPE_CHECKING:
    from ...spec import Plan
    from ..core import Engine

@dataclass(frozen=True)
class Decision:
    """An answer to an approval: approve with ``fields``, or reject (a ``reason``)."""

    fields: dict[str, Any] | None = None
    reason: str | None = None


CALLBACK_TTL = 30 * 86400.0  # seconds a callback URL works when the approval has no timeout
REJECTED = "approval-rejected"


async def execute(engine: Engine, plan: Plan, claim: Claim) -> Outcome:
    step = plan.steps[decide.plan_step(claim.step_id)].step
    approval = step.approval
    assert approval is not None
    if claim.woken:  # the timeout passed with no answer
        if approval.on_timeout == "default":
            return on_error.answer(step, approval.default or {})
        return rejection(claim.step_id, f"no answer within {approval.timeout:g} seconds (on_timeout: reject)")
    message = None
    if approval.message is not None:
        try:
            message = await render_async(approval.message, decide.claim_context(plan, claim.run, claim.step_id))
        except TemplateError as exc:
            return Failure(ErrorInfo(exc.type, f"step '{claim.step_id}' approval.message: {exc.message}", claim.step_id))
    at = now()
    until = at + dt.timedelta(seconds=approval.timeout) if approval.timeout is not None else None
    info: dict[str, Any] = {
        "kind": "approval",
        "until": _iso(until),
        "message": message,
        "fields": [{"name": f.name, "type": f.type, "description": f.description} for f in approval.fields],
        "callback_expires_at": None,
    }
    if engine.api_url is None:  # no API to call back (a local run)
        return Park(until, info)
    token = secrets.token_urlsafe(32)
    expires = until or at + dt.timedelta(seconds=CALLBACK_TTL)
    info["callback_expires_at"] = _iso(expires)
    # The token is given out once, to the owner (the event and the run.waiting webhook); the step keeps its hash.
    return Park(until, info, callback=(token_hash(token), expires), event={"callback_url": f"{engine.api_url}/v1/callbacks/{token}"})


async def answer(
    engine: Engine, run_id: str, step_id: str, *, fields: dict[str, Any] | None = None, reason: str | None = None, user_id: str | None = None
) -> RunState:
    """Approve (``fields``) or reject (``reason``) a waiting approval of ``user_id``'s run.
    NotFound: no such run (for that user) or step; ConflictError: the step is not
    waiting for an answer (answered, timed out, cancelled, or not an approval);
    AnswerError: the fields do not match the declared ones."""
    run = await engine.store.get_run(run_id, user_id=user_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    state = run.steps.get(step_id)
    if state is None:
        raise NotFound(f"run {run_id} has no step '{step_id}'")
    step = engine.plan_for(run).steps[decide.plan_step(step_id)].step
    if step.approval is None:
        raise ConflictError(f"step '{step_id}' is a `{step.kind}` step, not an approval")
    if state.status is not StepStatus.WAITING:
        raise ConflictError(f"step '{step_id}' is not waiting for an answer: it is {state.status.value}")
    if reason is None:
        problems = field_problems(step.approval.fields, fields if fields is not None else {})
        if problems:
            raise AnswerError(problems)
        outcome: Success | Failure = approved(step, fields or {})
    else:
        outcome = rejection(step_id, reason)
    if await engine.resolve(run_id, step_id, outcome, user_id=user_id) is None:
        raise ConflictError(f"step '{step_id}' is not waiting for an answer: it was answered (or timed out) just now")
    final = await engine.store.get_run(run_id, user_id=user_id)
    assert final is not None
    return final


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def approved(step: Step, fields: dict[str, Any]) -> Success:
    """The step's answer when approved: its fields (as `outputs`), or "approved"."""
    assert step.approval is not None
    if not step.approval.fields:
        return Success("", "approved", None, "", Usage(), 0)
    return on_error.answer(step, fields)


def rejection(step_id: str, reason: str) -> Failure:
    return Failure(ErrorInfo(REJECTED, f"rejected: {reason}" if reason else "rejected", step_id))


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


__all__ = ["Decision", "answer", "approved", "execute", "rejection", "token_hash"]
