"""The run protocol, one step per call: start a run; process a message by
claiming the step, executing it outside any transaction, and completing it.
Stores and queues are interfaces: memory + in-process locally, Postgres + SQS hosted."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import OrchestrateError, ProviderError, TemplateError
from ..llm.base import ChatRequest, Provider
from ..llm.retry import complete_with_retries
from ..spec import Plan, build
from ..spec.model import OutputSpec
from ..spec.plan import StepPlan
from ..templates import in_render_thread, render_async
from . import decide
from .queue import Queue
from .records import ErrorInfo, Mode, RunState, StepMessage, StepState, StepStatus
from .store import Applied, Claim, Failure, Outcome, Retry, Store, Success

log = logging.getLogger("orchestrate.engine")


class RunFinished(Protocol):
    """Wakes the webhook sender when a run with a webhook URL ends."""

    async def run_finished(self, run_id: str) -> None: ...

LEASE_MARGIN = 30.0  # seconds a lease outlives the step's own timeout
MAX_LEASE = 900.0 + LEASE_MARGIN  # before the plan is known: the longest step timeout


class Engine:
    def __init__(
        self, store: Store, queue: Queue, provider: Provider, *, default_model: str = "gpt-4o", webhooks: RunFinished | None = None
    ) -> None:
        self.store = store
        self.queue = queue
        self.provider = provider
        self.webhooks = webhooks
        self.default_model = default_model
        self._plans: OrderedDict[str, Plan] = OrderedDict()

    async def start(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        *,
        run_id: str | None = None,
        owner_id: str | None = None,
        workflow_id: str | None = None,
        mode: Mode = Mode.AUTO,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> RunState:
        """Create a run with validated inputs and enqueue its first steps. A repeated
        ``idempotency_key`` returns the earlier run (see ``Store.create_run``)."""
        from ..spec import dump_spec

        # Root steps' `when:` is evaluated here: off the event loop, in the render threads.
        steps, transition = await in_render_thread(decide.start, plan, inputs)
        run = RunState(
            id=run_id or str(uuid.uuid4()),
            spec=dump_spec(plan),
            inputs=dict(inputs),
            mode=mode,
            owner_id=owner_id,
            workflow_id=workflow_id,
            webhook_url=webhook_url,
            steps=steps,
        )
        created = await self.store.create_run(run, transition, idempotency_key=idempotency_key, request_hash=request_hash)
        if created.id == run.id:  # not a replay of an earlier request
            self._remember(run.id, plan)
            await self._enqueue(created.id, transition.queue)
            if transition.finish is not None:  # every root step skipped, say
                await self._finished(created)
        return created

    async def process(self, message: StepMessage, *, lease_seconds: float | None = None) -> bool:
        """Handle one queue message. Returns False when there was nothing to do
        (duplicate, stale, paused or finished run): the message is acknowledged."""
        cached = self._plans.get(message.run_id)
        lease, need = MAX_LEASE, None  # before the plan is known: the longest step, every step's result
        if cached is not None and message.step_id in cached.steps:
            lease = cached.steps[message.step_id].step.timeout + LEASE_MARGIN
            need = decide.needed_steps(cached, message.step_id)
        claim = await self.store.claim(message.run_id, message.step_id, lease_seconds or lease, need=need, with_spec=cached is None)
        if claim is None:
            return False
        plan = self.plan_for(claim.run)
        step = plan.steps[claim.step_id].step
        if claim.attempts_used > step.retry.max_attempts:
            # Earlier invocations died before recording anything (a crash, a kill at the
            # function's timeout): give up rather than re-run the step forever.
            reason = f"the step did not finish in {step.retry.max_attempts} attempts: its invocation crashed or timed out each time"
            outcome: Outcome = Failure(ErrorInfo("step-abandoned", reason, claim.step_id))
        else:
            outcome = await self._execute(plan, claim)
        applied = await self.store.complete(claim, outcome, lambda run: decide.after_step(self.plan_for(run), run))
        if applied is None:
            log.info("discarded a late result for %s/%s attempt %s", claim.run.id, claim.step_id, claim.attempt)
            return True
        await self._enqueue(claim.run.id, applied.queued, applied.delay)
        if applied.finished:
            self._plans.pop(claim.run.id, None)
            await self._finished(claim.run)
        return True

    async def _finished(self, run: RunState) -> None:
        # The delivery row was written with the run's end; this only wakes its sender.
        if self.webhooks is not None and run.webhook_url:
            await self.webhooks.run_finished(run.id)

    async def control(self, run_id: str, action: decide.Action, *, user_id: str | None = None) -> RunState:
        """Pause, resume, step, cancel or retry a run; enqueue what it made ready."""
        applied = await self.store.control(run_id, lambda run: decide.control(self.plan_for(run), run, action), user_id=user_id)
        await self._enqueue(run_id, applied.enqueue)
        run = await self.store.get_run(run_id, user_id=user_id)
        assert run is not None
        if applied.transition.finish is not None:
            await self._finished(run)
        return run

    def plan_for(self, run: RunState) -> Plan:
        plan = self._plans.get(run.id)
        if plan is None:
            plan = build(run.spec)  # a stored snapshot; already valid when the run started
            self._remember(run.id, plan)
        return plan

    def _remember(self, run_id: str, plan: Plan) -> None:
        self._plans[run_id] = plan
        self._plans.move_to_end(run_id)
        while len(self._plans) > 1000:
            self._plans.popitem(last=False)

    async def _enqueue(self, run_id: str, step_ids: list[str], delay: float = 0.0) -> None:
        if step_ids:
            await self.queue.send([StepMessage(run_id, sid) for sid in step_ids], delay)

    async def _execute(self, plan: Plan, claim: Claim) -> Outcome:
        """Run a claimed step. Whatever happens ends in an outcome to record: a step is
        never left running until its lease lapses, to be claimed and crash again."""
        where = f"{claim.run.id}/{claim.step_id} attempt {claim.attempt}"
        try:
            outcome = await self._attempt(plan, claim)
        except (MemoryError, RecursionError) as exc:
            log.error("step %s failed: %s", where, type(exc).__name__)
            return Failure(ErrorInfo("step-crashed", f"the step failed: {type(exc).__name__}", claim.step_id))
        except Exception:
            log.exception("step %s failed unexpectedly", where)  # a bug: keep the traceback
            return Failure(ErrorInfo("internal-error", "the step failed unexpectedly; the error was logged", claim.step_id))
        if isinstance(outcome, Failure) and outcome.error.type == "template-error":
            log.info("step %s failed: %s", where, outcome.error.message)
        return outcome

    async def _attempt(self, plan: Plan, claim: Claim) -> Outcome:
        sp = plan.steps[claim.step_id]
        run = claim.run
        prompt: str | None = None
        try:
            prompt = await render_async(sp.step.prompt, decide.prompt_context(plan, claim.step_id, run.inputs, run.steps))
            request = self._request(plan, sp, prompt, run.steps)
            started = time.perf_counter()
            completion = await complete_with_retries(self.provider, request, timeout=sp.step.timeout)
            latency = int((time.perf_counter() - started) * 1000)
        except TemplateError as exc:
            return Failure(ErrorInfo(exc.type, exc.message, claim.step_id), prompt)
        except ProviderError as exc:
            error = ErrorInfo(exc.type, exc.message, claim.step_id)
            if exc.retryable and claim.attempts_used < sp.step.retry.max_attempts:
                return Retry(error, _backoff(sp, claim.attempts_used), prompt)
            if exc.retryable:
                error = ErrorInfo(exc.type, f"{exc.message} (gave up after {claim.attempts_used} attempts)", claim.step_id)
            return Failure(error, prompt)
        except OrchestrateError as exc:
            return Failure(ErrorInfo(exc.type, exc.message, claim.step_id), prompt)
        text, data = _without_nul(completion.text), completion.data
        if data is not None and "\\u0000" in json.dumps(data):
            data = json.loads(json.dumps(data).replace("\\u0000", "\\ufffd"))
        return Success(prompt, text, data, completion.model, completion.usage, latency)

    def _request(self, plan: Plan, sp: StepPlan, prompt: str, steps: Mapping[str, StepState]) -> ChatRequest:
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
            model=step.model or defaults.model or self.default_model,
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


def _without_nul(text: str) -> str:
    """Postgres stores no U+0000; a model may still answer one. Keep it visible."""
    return text.replace("\x00", "\ufffd")


def _backoff(sp: StepPlan, attempt: int) -> float:
    retry = sp.step.retry
    delay: float = min(retry.max_delay, retry.initial_delay * 2 ** (attempt - 1)) * random.uniform(0.8, 1.0)
    return delay


__all__ = ["Applied", "Engine", "output_schema"]
