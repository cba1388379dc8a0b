"""An in-memory Store for local runs and tests. Each method runs without awaiting
inside its critical section, so on one event loop it is atomic. It keeps the same
counters as the Postgres protocol (supabase/migrations/*_protocol_v2.sql), step for
step: the engine suite runs on both and must see the same behaviour."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConflictError, NotFound
from .decide import Action, Control, StepNode, run_outputs
from .records import ErrorInfo, Event, Mode, RunState, RunStatus, StepState, StepStatus, Usage, now
from .store import Applied, Claim, Controlled, Outcome, Retry, Skipped, Started, Success, outcome_event

_UNFINISHED = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING)
_ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


class MemoryStore:
    def __init__(self) -> None:
        self._runs: dict[str, RunState] = {}
        self._events: dict[str, list[Event]] = {}
        self._keys: dict[tuple[str | None, str], tuple[str, str | None]] = {}  # idempotency keys
        self._changed = asyncio.Condition()

    async def create_run(
        self,
        run: RunState,
        graph: Sequence[StepNode],
        *,
        max_in_flight: int = 50,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> Started:
        if run.id in self._runs:
            raise ValueError(f"run {run.id} exists")
        if idempotency_key is not None:
            key = (run.owner_id, idempotency_key)
            if key in self._keys:
                first_id, first_hash = self._keys[key]
                if first_hash != request_hash:
                    raise ConflictError("this Idempotency-Key was already used with a different request")
                return Started(copy.deepcopy(self._runs[first_id]), [])
            self._keys[key] = (run.id, request_hash)
        at = now()
        run = copy.deepcopy(run)
        run.step_budget = 1 if run.mode is Mode.STEP else 0
        run.max_in_flight, run.unfinished = max_in_flight, len(graph)
        run.steps = {}
        for node in graph:
            root = not node.needs
            run.steps[node.step_id] = StepState(
                node.step_id,
                node.position,
                StepStatus.QUEUED if root else StepStatus.PENDING,
                queued_at=at if root else None,
                needs=node.needs,
                reads=node.reads,
                dependents=node.dependents,
                waiting=len(node.needs),
            )
        self._runs[run.id] = run
        self._events[run.id] = []
        self._append(run.id, "run.queued", None, {"workflow": run.spec.get("name"), "mode": run.mode.value})
        ready = [s for s in self._by_position(run) if s.status is StepStatus.QUEUED]
        for step in ready:
            self._append(run.id, "step.queued", step.step_id, {})
        released = self._release_held(run, max_in_flight)
        run.in_flight, run.held = len(released), len(ready) - len(released)
        await self._notify()
        return Started(copy.deepcopy(run), released)

    async def claim(self, run_id: str, step_id: str, lease_seconds: float, *, with_spec: bool = True) -> Claim | None:
        run = self._runs.get(run_id)
        step = run.steps.get(step_id) if run else None
        if run is None or step is None or run.status not in _ACTIVE:
            return None
        at = now()
        claimable = (step.status is StepStatus.QUEUED and step.released and (step.not_before is None or step.not_before <= at)) or (
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
        # What the claim reads, as the Postgres claim does: the step and its reads. The
        # states of finished steps never change again, so sharing them is safe.
        reads = step.needs if step.reads is None else step.reads
        view = {sid: run.steps[sid] for sid in (*reads, step_id)}
        return Claim(dataclasses.replace(run, steps=view), step_id, step.attempt, tries=step.attempt - step.retry_base)

    async def complete(self, claim: Claim, outcome: Outcome) -> Applied | None:
        run = self._runs.get(claim.run.id)
        step = run.steps.get(claim.step_id) if run else None
        if run is None or step is None or step.status is not StepStatus.RUNNING or step.attempt != claim.attempt:
            return None  # a newer claim owns the step, or the run ended
        at = now()
        step.prompt = outcome.prompt if outcome.prompt is not None else step.prompt
        step.lease_until = None
        self._append(run.id, *outcome_event(step.step_id, step.attempt, outcome))
        if isinstance(outcome, Retry):  # still in flight: its next message is sent with a delay
            step.status, step.error = StepStatus.QUEUED, outcome.error
            step.queued_at, step.not_before = at, at + dt.timedelta(seconds=outcome.delay)
            await self._notify()
            return Applied([step.step_id], delay=outcome.delay)
        step.finished_at, step.not_before = at, None
        if isinstance(outcome, Success):
            step.status, step.error = StepStatus.SUCCEEDED, None
            step.output, step.outputs, step.model = outcome.output, outcome.outputs, outcome.model
            step.usage, step.latency_ms = outcome.usage, outcome.latency_ms
        elif isinstance(outcome, Skipped):
            step.status, step.error = StepStatus.SKIPPED, None
        else:  # fail fast: the run fails, the rest is cancelled
            step.status, step.error = StepStatus.FAILED, outcome.error
            self._cancel_unfinished(run)
            self._append(run.id, "run.failed", None, {"error": outcome.error.to_dict()})
            self._finish(run, RunStatus.FAILED, outcome.error)
            await self._notify()
            return Applied([], finished=True)
        skip = isinstance(outcome, Skipped)
        in_flight = run.in_flight - 1
        room = run.max_in_flight - in_flight
        may_release = run.status in _ACTIVE and (run.mode is Mode.AUTO or skip)
        fast = may_release and run.held == 0 and len(step.dependents) <= room
        ready = []
        for sid in step.dependents:
            dep = run.steps[sid]
            if dep.status is StepStatus.PENDING:
                dep.waiting -= 1
                if dep.waiting == 0:
                    dep.status, dep.queued_at, dep.released = StepStatus.QUEUED, at, fast
                    ready.append(dep)
        ready.sort(key=lambda s: s.position)
        released = [s.step_id for s in ready] if fast else self._release_held(run, room) if may_release else []
        for dep in ready:
            self._append(run.id, "step.queued", dep.step_id, {})
        run.unfinished -= 1
        run.in_flight, run.held = in_flight + len(released), run.held + len(ready) - len(released)
        if run.mode is Mode.STEP and skip:
            run.step_budget += 1  # a skip gives back the claim it spent: it ran nothing
        if run.unfinished == 0:
            self._append(run.id, "run.succeeded", None, {})
            self._finish(run, RunStatus.SUCCEEDED, None)
        elif run.mode is Mode.STEP and not skip and run.status in _ACTIVE:
            run.status = RunStatus.PAUSED
            self._append(run.id, "run.paused", None, {"after_step": True})
        await self._notify()
        return Applied(released, finished=run.status.finished)

    async def control(self, run_id: str, decide: Callable[[RunState], Control], *, user_id: str | None = None) -> Controlled:
        run = self._runs.get(run_id)
        if run is None or (user_id is not None and run.owner_id != user_id):
            raise NotFound(f"run {run_id} not found")
        decision = decide(run)
        send: list[str] = []
        if decision.action is Action.PAUSE:
            run.status = RunStatus.PAUSED
            self._append(run_id, "run.paused", None, {})
        elif decision.action is Action.CANCEL:
            self._cancel_unfinished(run)
            error = ErrorInfo("cancelled", "the run was cancelled")
            self._append(run_id, "run.cancelled", None, {"error": error.to_dict()})
            self._finish(run, RunStatus.CANCELLED, error)
        else:
            if decision.action is Action.RETRY:
                self._retry(run, decision.reset)
            else:
                self._append(run_id, "run.resumed", None, {})
            run.status = RunStatus.RUNNING
            if decision.step_budget is not None:
                run.step_budget = decision.step_budget
            queued = [s for s in self._by_position(run) if s.status is StepStatus.QUEUED]
            if run.mode is Mode.STEP:  # one step at a time: the first queued one
                if queued:
                    send = [queued[0].step_id]
                    if not queued[0].released:
                        queued[0].released = True
                        run.in_flight, run.held = run.in_flight + 1, run.held - 1
            else:  # messages refused while paused are sent again; held steps released
                send = [s.step_id for s in queued if s.released]
                released = self._release_held(run, run.max_in_flight - run.in_flight)
                run.in_flight, run.held = run.in_flight + len(released), run.held - len(released)
                send += released
        await self._notify()
        return Controlled(run.status, send, finished=decision.action is Action.CANCEL)

    def _retry(self, run: RunState, reset: list[str]) -> None:
        """The steps to run again become pending; the counters are recounted (once)."""
        at = now()
        for sid in reset:
            old = run.steps[sid]
            run.steps[sid] = dataclasses.replace(
                old, status=StepStatus.PENDING, error=None, finished_at=None, lease_until=None, started_at=None, released=False, retry_base=old.attempt
            )
        pending = {sid for sid, s in run.steps.items() if s.status is StepStatus.PENDING}
        for sid in pending:
            step = run.steps[sid]
            step.waiting = sum(1 for d in step.needs if d in pending)
            step.queued_at = at
            if step.waiting == 0:
                step.status = StepStatus.QUEUED
        run.error, run.outputs, run.finished_at, run.in_flight = None, None, None, 0
        run.unfinished = len(pending)
        queued = [s for s in self._by_position(run) if s.status is StepStatus.QUEUED]
        run.held = len(queued)
        self._append(run.id, "run.retried", None, {})
        for step in queued:
            self._append(run.id, "step.queued", step.step_id, {})

    def _release_held(self, run: RunState, room: int) -> list[str]:
        held = [s for s in self._by_position(run) if s.status is StepStatus.QUEUED and not s.released][: max(room, 0)]
        for step in held:
            step.released = True
        return [s.step_id for s in held]

    def _cancel_unfinished(self, run: RunState) -> None:
        at = now()
        for step in self._by_position(run):
            if step.status in _UNFINISHED:
                step.status, step.finished_at, step.lease_until = StepStatus.CANCELLED, at, None
                self._append(run.id, "step.cancelled", step.step_id, {})

    def _finish(self, run: RunState, status: RunStatus, error: ErrorInfo | None) -> None:
        run.status, run.finished_at, run.error = status, now(), error
        run.in_flight = run.held = 0
        run.outputs = run_outputs(run.steps) if status is RunStatus.SUCCEEDED else None
        run.usage = sum((s.usage for s in run.steps.values()), Usage())

    @staticmethod
    def _by_position(run: RunState) -> list[StepState]:
        return sorted(run.steps.values(), key=lambda s: s.position)

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
