"""A wait step: a durable sleep. The step parks until its time (no invocation stays
alive meanwhile) and, woken, succeeds with the time it woke."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ...errors import TemplateError
from ...spec.plan import parse_until
from ...templates import render_async
from .. import decide
from ..records import ErrorInfo, Usage, now
from ..store import Claim, Failure, Outcome, Park, Success

if TYPE_CHECKING:
    from ...spec import Plan
    from ..core import Engine


async def execute(engine: Engine, plan: Plan, claim: Claim) -> Outcome:
    step = plan.steps[decide.plan_step(claim.step_id)].step
    assert step.wait is not None
    if claim.woken:
        return _woke(claim.step_id)
    if step.wait.seconds is not None:
        until = now() + dt.timedelta(seconds=step.wait.seconds)
    else:
        assert step.wait.until is not None
        try:
            text = await render_async(step.wait.until, decide.claim_context(plan, claim.run, claim.step_id))
        except TemplateError as exc:
            return Failure(ErrorInfo(exc.type, f"step '{claim.step_id}' wait.until: {exc.message}", claim.step_id))
        parsed = parse_until(text)
        if isinstance(parsed, str):
            return Failure(ErrorInfo("invalid-time", f"step '{claim.step_id}' wait.until: {parsed}", claim.step_id))
        until = parsed
    if until <= now():  # a time already past: nothing to wait for
        return _woke(claim.step_id)
    return Park(until, {"kind": "wait", "until": until.astimezone(dt.UTC).isoformat()})


def _woke(step_id: str) -> Success:
    """The answer of a wait: the time it woke (UTC, ISO 8601)."""
    return Success("", now().isoformat(), None, "", Usage(), 0)
