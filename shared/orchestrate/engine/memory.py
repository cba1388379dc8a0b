"""An in-memory Store for local runs and tests. Each method runs without awaiting
inside its critical section, so on one event loop it is atomic."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from ..errors import ConflictError, NotFound
from .decide import Control, Transition, run_outputs
from .records import Event, Mode, RunState, RunStatus, StepState, StepStatus, Usage, now
from .store import Applied, Claim, Decider, Outcome, Retry, Success, outcome_event, transition_events


class MemoryStore:
    def __init__(self) -> None:
        self._runs: dict[str, RunState] = {}
        self._events: dict[str, list[Event]] = {}
        self._keys: dict[tuple[str | None, str], tuple[str, str | None]] = {}  # idempotency keys
        self._changed = asyncio.Condition()

    async def create_run(
        self, run: RunState, transition: Transition, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> RunState:
        if run.id in self._runs:
            raise ValueError(f"run {run.id} exists")
        if idempotency_key is not None:
            key = (run.owner_id, idempotency_key)
            if key in self._keys:
                first_id, first_hash = self._keys[key]
                if first_hash != request_hash:
                    raise ConflictError("this Idempotency-Key was already used with a different request")
                return copy.deepcopy(self._runs[first_id])
            self._keys[key] = (run.id, request_hash)
        run = copy.deepcopy(run)
        run.step_budget = 1 if run.mode is Mode.STEP else 0
        self._runs[run.id] = run
        self._events[run.id] = []
        self._append(run.id, "run.queued", None, {"workflow": run.spec.get("name"), "mode": run.mode.value})
        self._apply(run, transition)
        await self._notify()
        return copy.deepcopy(run)

    async def claim(
        self, run_id: str, step_id: str, lease_seconds: float, *, need: Collection[str] | None = None, with_spec: bool = True
    ) -> Claim | None:
        run = self._runs.get(run_id)
        step = run.steps.get(step_id) if run else None
        if run is None or step is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return None
        at = now()
        claimable = (step.status is StepStatus.QUEUED and (step.not_before is None or step.not_before <= at)) or (
            step.status is StepStatus.RUNNING and step.lease_until is not None and step.lease_until < at
        )
        if not claimable:
            return None
        # Step mode spends its budget on a step's first claim only (see claim_step's SQL).
        first = step.status is StepStatus.QUEUED and step.not_before is None
        if run.mode is Mode.STEP and first:
            if run.step_budget < 1:
                return None
            run.step_budget -= 1
        if run.status is RunStatus.QUEUED:
            run.status, run.started_at = RunStatus.RUNNING, at
            self._append(run_id, "run.started", None, {})
        step.status, step.attempt, step.started_at = StepStatus.RUNNING, step.attempt + 1, at
        step.lease_until = at + dt.timedelta(seconds=lease_seconds)
        self._append(run_id, "step.started", step_id, {"attempt": step.attempt})
        await self._notify()
        # A shallow view: the step states the engine reads (finished dependencies)
        # never change again, and copying every step per claim would make a run O(n^2).
        return Claim(dataclasses.replace(run, steps=dict(run.steps)), step_id, step.attempt, tries=step.attempt - step.retry_base)

    async def complete(self, claim: Claim, outcome: Outcome, decide: Decider) -> Applied | None:
        run = self._runs.get(claim.run.id)
        step = run.steps.get(claim.step_id) if run else None
        if run is None or step is None or step.status is not StepStatus.RUNNING or step.attempt != claim.attempt:
            return None  # a newer claim owns the step, or the run was cancelled
        at = now()
        step.prompt = outcome.prompt if outcome.prompt is not None else step.prompt
        step.lease_until = None
        self._append(run.id, *outcome_event(step.step_id, step.attempt, outcome))
        if isinstance(outcome, Retry):
            step.status, step.error = StepStatus.QUEUED, outcome.error
            step.queued_at, step.not_before = at, at + dt.timedelta(seconds=outcome.delay)
            await self._notify()
            return Applied([step.step_id], delay=outcome.delay)
        if isinstance(outcome, Success):
            step.status, step.error = StepStatus.SUCCEEDED, None
            step.output, step.outputs, step.model = outcome.output, outcome.outputs, outcome.model
            step.usage, step.latency_ms = outcome.usage, outcome.latency_ms
        else:
            step.status, step.error = StepStatus.FAILED, outcome.error
        step.finished_at = at
        transition = decide(run)  # pure and synchronous: it may read the live state
        queued = self._apply(run, transition)
        await self._notify()
        return Applied(queued, finished=run.status.finished)

    async def control(self, run_id: str, decide: Callable[[RunState], Control], *, user_id: str | None = None) -> Control:
        run = self._runs.get(run_id)
        if run is None or (user_id is not None and run.owner_id != user_id):
            raise NotFound(f"run {run_id} not found")
        decision = decide(run)
        for sid in decision.reset:
            old = run.steps[sid]
            run.steps[sid] = StepState(sid, old.position, StepStatus.PENDING, attempt=old.attempt, retry_base=old.attempt)
        run.status = decision.status
        if decision.step_budget is not None:
            run.step_budget = decision.step_budget
        if decision.reset:
            run.error, run.finished_at, run.outputs = None, None, None
        if decision.event:
            self._append(run_id, decision.event, None, {})
        self._apply(run, decision.transition)
        await self._notify()
        return decision

    def _apply(self, run: RunState, transition: Transition) -> list[str]:
        at = now()
        for sid in transition.queue:
            run.steps[sid].status, run.steps[sid].queued_at, run.steps[sid].not_before = StepStatus.QUEUED, at, None
        for sid in transition.skip:
            run.steps[sid].status, run.steps[sid].finished_at = StepStatus.SKIPPED, at
        for sid, error in transition.fail.items():
            run.steps[sid].status, run.steps[sid].error, run.steps[sid].finished_at = StepStatus.FAILED, error, at
        for sid in transition.cancel:
            run.steps[sid].status, run.steps[sid].finished_at, run.steps[sid].lease_until = StepStatus.CANCELLED, at, None
        if transition.finish is not None:
            run.status, run.finished_at, run.error = transition.finish, at, transition.error
            run.outputs = run_outputs(run.steps) if transition.finish is RunStatus.SUCCEEDED else None
            run.usage = sum((s.usage for s in run.steps.values()), Usage())
        elif transition.pause:
            run.status = RunStatus.PAUSED
        for event in transition_events(transition):
            self._append(run.id, *event)
        return list(transition.queue)

    def _append(self, run_id: str, type_: str, step_id: str | None, data: dict[str, Any]) -> None:
        log = self._events[run_id]
        log.append(Event(run_id, len(log) + 1, type_, step_id, data))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def get_run(self, run_id: str, *, user_id: str | None = None) -> RunState | None:
        run = self._runs.get(run_id)
        if run is None or (user_id is not None and run.owner_id != user_id):
            return None
        return copy.deepcopy(run)

    async def events(self, run_id: str, after: int = 0, wait: float = 0.0, *, user_id: str | None = None) -> list[Event]:
        run = self._runs.get(run_id)
        if run is None or (user_id is not None and run.owner_id != user_id):
            return []
        log = self._events[run_id]
        if len(log) <= after and wait > 0:
            try:
                async with self._changed:
                    await asyncio.wait_for(self._changed.wait_for(lambda: len(self._events[run_id]) > after), wait)
            except TimeoutError:
                pass
        return log[after:]
