"""A prompt step: render the prompt, call the model (retrying what the provider says
is transient), and return the answer."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import OrchestrateError, ProviderError, TemplateError
from ...llm.base import ChatRequest
from ...llm.retry import complete_with_retries
from ...spec.model import OutputSpec
from ...spec.plan import StepPlan
from ...templates import render_async
from .. import decide
from ..records import ErrorInfo, StepState, StepStatus
from ..store import Claim, Failure, Outcome, Retry, Success

if TYPE_CHECKING:
    from ...spec import Plan
    from ..core import Engine

MAX_ITEM_ANSWER = 64 * 1024  # characters of one for_each item's answer


async def execute(engine: Engine, plan: Plan, claim: Claim) -> Outcome:
    sp = plan.steps[decide.plan_step(claim.step_id)]
    assert sp.step.prompt is not None
    run = claim.run
    item = run.steps[claim.step_id].item
    prompt: str | None = None
    try:
        prompt = await render_async(sp.step.prompt, decide.claim_context(plan, run, claim.step_id))
        request = _request(plan, sp, prompt, run.steps, engine.default_model)
        started = time.perf_counter()
        completion = await complete_with_retries(engine.provider, request, timeout=sp.step.timeout)
        latency = int((time.perf_counter() - started) * 1000)
    except TemplateError as exc:
        return Failure(ErrorInfo(exc.type, exc.message, claim.step_id), prompt)
    except ProviderError as exc:
        error = ErrorInfo(exc.type, exc.message, claim.step_id)
        if exc.retryable and claim.attempts_used < sp.step.retry.max_attempts:
            return Retry(error, backoff(sp, claim.attempts_used), prompt)
        if exc.retryable:
            error = ErrorInfo(exc.type, f"{exc.message} (gave up after {claim.attempts_used} attempts)", claim.step_id)
        return Failure(error, prompt)
    except OrchestrateError as exc:
        return Failure(ErrorInfo(exc.type, exc.message, claim.step_id), prompt)
    text, data = without_nul(completion.text), completion.data
    if data is not None and "\\u0000" in json.dumps(data):
        data = json.loads(json.dumps(data).replace("\\u0000", "\\ufffd"))
    if item is not None and len(text) > MAX_ITEM_ANSWER:
        # Every item's answer ends up in its step's list: bound what one item adds.
        message = f"the answer of item {claim.step_id} is {len(text)} characters; an item's answer may have at most {MAX_ITEM_ANSWER}"
        return Failure(ErrorInfo("output-too-large", message, claim.step_id), prompt)
    return Success(prompt, text, data, completion.model, completion.usage, latency)


def _request(plan: Plan, sp: StepPlan, prompt: str, steps: Mapping[str, StepState], default_model: str) -> ChatRequest:
    step, defaults = sp.step, plan.workflow.defaults
    messages: list[dict[str, str]] = []
    system = step.system if step.system is not None else defaults.system
    if system:
        messages.append({"role": "system", "content": system})
    if plan.conversation:
        # v0.1: each step sees the earlier prompts and answers as chat history.
        for earlier in list(plan.steps)[: sp.index]:
            state = steps[earlier]
            if state.status is StepStatus.SUCCEEDED and state.prompt is not None and state.output is not None:
                messages += [{"role": "user", "content": state.prompt}, {"role": "assistant", "content": state.output}]
    messages.append({"role": "user", "content": prompt})
    return ChatRequest(
        model=step.model or defaults.model or default_model,
        messages=messages,
        temperature=step.temperature if step.temperature is not None else defaults.temperature,
        max_tokens=step.max_tokens or defaults.max_tokens,
        output_schema=output_schema(step.outputs) if step.outputs else None,
        timeout=step.timeout,
    )


def output_schema(outputs: list[OutputSpec]) -> dict[str, Any]:
    """The JSON Schema of a step's structured answer (strict: every field required)."""
    properties: dict[str, Any] = {}
    for out in outputs:
        prop: dict[str, Any] = {"type": out.type}
        if out.type == "array":
            prop["items"] = {"type": "string"}
        if out.description:
            prop["description"] = out.description
        properties[out.name] = prop
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def without_nul(text: str) -> str:
    """Postgres stores no U+0000; a model may still answer one. Keep it visible."""
    return text.replace("\x00", "\ufffd")


def backoff(sp: StepPlan, attempt: int) -> float:
    """The delay before a retryable failure's next attempt: exponential, jittered."""
    retry = sp.step.retry
    delay: float = min(retry.max_delay, retry.initial_delay * 2 ** (attempt - 1)) * random.uniform(0.8, 1.0)
    return delay
