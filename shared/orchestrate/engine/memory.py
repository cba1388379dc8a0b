"""An in-memory Store for local runs and tests. Each method runs without awaiting
inside its critical section, so on one event loop it is atomic. It keeps the same
counters as the Postgres protocol (supabase/migrations/*_protocol_v2.sql), step for
step: the engine suite runs on both and must see the same behaviour."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConflictError, NotFound
from .decide import Action, Control, StepNode, run_outputs
from .records import ErrorInfo, Event, Mode, RunState, RunStatus, StepState, StepStatus, Usage, now
from .store import Applied, Claim, Controlled, EventSpec, Expand, Failure, Family, NotDue, Outcome, Park, Retry, ReusedStep, Skipped, Started, Success, outcome_event

_UNFINISHED = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.WAITING)
_ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def _links(run: RunState) -> dict[str, Any]:
    """The run.queued event's links of a child run or a rerun (as create_run's SQL)."""
    links: dict[str, Any] = {}
    if run.parent_run_id:
        links["parent"] = {"run_id": run.parent_run_id, "step_id": run.parent_step_id}
    if run.rerun_of_run_id:
        links["rerun_of"] = {"run_id": run.rerun_of_run_id, "from": run.rerun_from}
    return links


class MemoryStore:
    def __init__(self) -> None:
        self._runs: dict[str, RunState] = {}
        self._events: dict[str, list[Event]] = {}
        self._keys: dict[tuple[str | None, str], tuple[str, str | None]] = {}  # idempotency keys
        self._children: dict[str, list[str]] = {}  # run id -> its child runs' ids
        self._changed = asyncio.Condition()

    async def create_run(
        self,
        run: RunState,
        graph: Sequence[StepNode],
        *,
        max_in_flight: int = 50,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        reused: Sequence[ReusedStep] = (),
    ) -> Started:
        if run.id in self._runs:
            raise ValueError(f"run {run.id} exists")
        parent = self._runs.get(run.parent_run_id) if run.parent_run_id else None
        if run.parent_run_id and (parent is None or parent.owner_id != run.owner_id):
            raise NotFound(f"parent run {run.parent_run_id} not found")
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
        done = {r.step_id: r for r in reused}
        run.max_in_flight, run.unfinished = max_in_flight, len(graph) - len(done)
        run.steps = {}
        for node in graph:
            copied = done.get(node.step_id)
            if copied is not None:
                run.steps[node.step_id] = StepState(
                    node.step_id, node.position, copied.status, prompt=copied.prompt, output=copied.output,
                    outputs=copy.deepcopy(copied.outputs), model=copied.model, queued_at=at, started_at=at, finished_at=at,
                    needs=node.needs, reads=node.reads, dependents=node.dependents, reused=True,
                )
                continue
            waiting = sum(1 for need in node.needs if need not in done)
            run.steps[node.step_id] = StepState(
                node.step_id,
                node.position,
                StepStatus.QUEUED if waiting == 0 else StepStatus.PENDING,
                queued_at=at if waiting == 0 else None,
                needs=node.needs,
                reads=node.reads,
                dependents=node.dependents,
                waiting=waiting,
            )
        self._runs[run.id] = run
        self._events[run.id] = []
        if parent is not None:
            self._children.setdefault(parent.id, []).append(run.id)
            if run.parent_step_id in parent.steps:
                parent.steps[run.parent_step_id].child_run_id = run.id
        self._append(run.id, "run.queued", None, {"workflow": run.spec.get("name"), "mode": run.mode.value, **_links(run)})
        for step in self._by_position(run):
            if step.reused:
                edited = done[step.step_id].edited
                self._append(run.id, "step.reused", step.step_id, {"source_run_id": run.rerun_of_run_id, "status": step.status.value, "edited": edited})
        ready = [s for s in self._by_position(run) if s.status is StepStatus.QUEUED]
        for step in ready:
            self._append(run.id, "step.queued", step.step_id, {})
        released = self._release_held(run, max_in_flight)
        run.in_flight, run.held = len(released), len(ready) - len(released)
        await self._notify()
        return Started(copy.deepcopy(run), released)

    async def claim(self, run_id: str, step_id: str, lease_seconds: float, *, with_spec: bool = True) -> Claim | NotDue | None:
        run = self._runs.get(run_id)
        step = run.steps.get(step_id) if run else None
        if run is None or step is None or run.status not in _ACTIVE:
            return None
        at = now()
        woken = step.status is StepStatus.WAITING and step.not_before is not None
        if woken and step.not_before is not None and step.not_before > at:
            return NotDue(step.not_before)
        claimable = woken or (step.status is StepStatus.QUEUED and step.released and (step.not_before is None or step.not_before <= at)) or (
            step.status is StepStatus.RUNNING and step.lease_until is not None and step.lease_until < at
        )
        if not claimable:
            return None
        if woken and step.parent is None:
            run.in_flight += 1  # running again: it takes a slot until it finishes
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
        self._append(run_id, "step.started", step_id, {"attempt": step.attempt, **({"woken": True} if woken else {})})
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
        events = [outcome_event(step.step_id, step.attempt, outcome)]
        try:
            if isinstance(outcome, Park):
                return self._park(run, step, outcome)
            step.waiting_for = None
            if isinstance(outcome, Retry):  # still in flight: its next message is sent with a delay
                step.status, step.error = StepStatus.QUEUED, outcome.error
                step.queued_at, step.not_before = at, at + dt.timedelta(seconds=outcome.delay)
                return Applied([step.step_id], delay=outcome.delay)
            if isinstance(outcome, Expand):
                return self._expand(run, step, outcome, events)
            step.finished_at, step.not_before = at, None
            if isinstance(outcome, Success):
                step.status, step.error = StepStatus.SUCCEEDED, None
                step.output, step.outputs, step.model = outcome.output, outcome.outputs, outcome.model
                step.usage, step.latency_ms = outcome.usage, outcome.latency_ms
            elif isinstance(outcome, Skipped):
                step.status, step.error = StepStatus.SKIPPED, None
            else:
                step.status, step.error = StepStatus.FAILED, outcome.error
            if step.parent is not None:
                return self._item_finished(run, step, outcome, events)
            if isinstance(outcome, Failure) and not outcome.go_on:
                return self._fail_run(run, outcome.error, events)
            return self._step_finished(run, step.dependents, isinstance(outcome, Skipped), events)
        finally:
            for event in events:
                self._append(run.id, *event)
            await self._notify()

    def _park(self, run: RunState, step: StepState, outcome: Park) -> Applied:
        """The step waits: out of flight (a top-level step's slot goes to a held step)."""
        step.status, step.waiting_for, step.not_before, step.queued_at = StepStatus.WAITING, dict(outcome.info), outcome.until, now()
        if step.parent is not None:  # an item keeps its place among its step's items
            return Applied([])
        run.in_flight -= 1
        released = self._release_held(run, run.max_in_flight - run.in_flight) if run.status in _ACTIVE and run.mode is Mode.AUTO else []
        run.in_flight, run.held = run.in_flight + len(released), run.held - len(released)
        return Applied(released)

    async def resolve(self, run_id: str, step_id: str, outcome: Success | Failure, *, user_id: str | None = None) -> Applied | None:
        run = self._runs.get(run_id)
        step = run.steps.get(step_id) if run else None
        if run is None or step is None or step.status is not StepStatus.WAITING or (user_id is not None and run.owner_id != user_id):
            return None
        # As if woken and finished at once: it takes a slot back, which its end frees.
        step.status = StepStatus.RUNNING
        if step.parent is None:
            run.in_flight += 1
        return await self.complete(Claim(run, step_id, step.attempt), outcome)

    def _expand(self, run: RunState, step: StepState, outcome: Expand, events: list[EventSpec]) -> Applied:
        """A for_each step: one execution per item, released ``concurrency`` at a time."""
        at, n = now(), len(outcome.items)
        for sid in [sid for sid, s in run.steps.items() if s.parent == step.step_id]:
            del run.steps[sid]  # a run retry's earlier items
        step.waiting, step.items_failed = n, 0
        reads = step.needs if step.reads is None else step.reads
        released = []
        for i, value in enumerate(outcome.items):
            sid = f"{step.step_id}[{i}]"
            run.steps[sid] = StepState(
                sid, step.position, StepStatus.QUEUED, queued_at=at, reads=reads, released=i < outcome.concurrency,
                parent=step.step_id, item={"value": value, "index": i, "length": n},
            )
            released += [sid] if i < outcome.concurrency else []
            events.append(("step.queued", sid, {}))
        run.unfinished += n
        if run.mode is Mode.STEP:
            run.step_budget += 1  # the expansion ran nothing; its first item spends the claim
        return Applied(released)

    def _item_finished(self, run: RunState, item: StepState, outcome: Outcome, events: list[EventSpec]) -> Applied:
        assert item.parent is not None
        parent = run.steps[item.parent]
        parent.waiting -= 1
        if isinstance(outcome, Failure):
            parent.items_failed += 1
            if parent.items_failed > outcome.tolerate:
                error = ErrorInfo(outcome.error.type, f"item {item.step_id} of step '{parent.step_id}' failed: {outcome.error.message}", parent.step_id)
                parent.finished_at = now()
                if outcome.default is None:
                    parent.status, parent.error = StepStatus.FAILED, error
                    events.append(("step.failed", parent.step_id, {"error": error.to_dict(), **({"on_error": "continue"} if outcome.go_on else {})}))
                    if not outcome.go_on:
                        return self._fail_run(run, error, events)
                else:
                    parent.status, parent.output, parent.outputs = StepStatus.SUCCEEDED, outcome.default.output, outcome.default.outputs
                    events.append(("step.succeeded", parent.step_id, {"on_error": {"default": True, "error": error.to_dict()}}))
                # The step ended on this item (`on_error`): its other items are cancelled.
                rest = [s for s in self._by_position(run) if s.parent == parent.step_id and s.status in _UNFINISHED]
                for other in rest:
                    other.status, other.finished_at, other.lease_until, other.waiting_for = StepStatus.CANCELLED, now(), None, None
                    events.append(("step.cancelled", other.step_id, {}))
                run.unfinished -= len(rest) + 1
                return self._step_finished(run, parent.dependents, False, events)
        assert item.item is not None
        n = int(item.item["length"])
        if parent.waiting > 0:
            run.unfinished -= 1
            # Items are released in order: the next held one is at most `concurrency` ahead.
            for k in range(int(item.item["index"]) + 1, n):
                held = run.steps[f"{parent.step_id}[{k}]"]
                if held.status is StepStatus.QUEUED and not held.released:
                    held.released = True  # takes the finished item's place
                    return Applied([held.step_id])
            return Applied([])
        items = [run.steps[f"{parent.step_id}[{k}]"] for k in range(n)]
        # The last item: the step's answer is the list of its items' answers, in order.
        ok = [s.status is StepStatus.SUCCEEDED for s in items]
        parent.status, parent.finished_at = StepStatus.SUCCEEDED, now()
        parent.output = json.dumps([s.output if good else None for s, good in zip(items, ok, strict=True)])
        parent.outputs = [(s.outputs if s.outputs is not None else s.output) if good else None for s, good in zip(items, ok, strict=True)]
        events.append(("step.succeeded", parent.step_id, {"items": len(items)}))
        run.unfinished -= 1
        return self._step_finished(run, parent.dependents, False, events)

    def _fail_run(self, run: RunState, error: ErrorInfo, events: list[EventSpec]) -> Applied:
        """Fail fast: the run fails, the rest is cancelled (once per run)."""
        events += self._cancel_unfinished(run)
        events.append(("run.failed", None, {"error": error.to_dict()}))
        self._finish(run, RunStatus.FAILED, error)
        return Applied([], finished=True)

    def _step_finished(self, run: RunState, dependents: tuple[str, ...], skip: bool, events: list[EventSpec]) -> Applied:
        """As orchestrate.step_finished: dependents wait for one step fewer, queued steps
        are released while the run has room, the run finishes when no step is left."""
        at = now()
        in_flight = run.in_flight - 1
        room = run.max_in_flight - in_flight
        may_release = run.status in _ACTIVE and (run.mode is Mode.AUTO or skip)
        fast = may_release and run.held == 0 and len(dependents) <= room
        ready = []
        for sid in dependents:
            dep = run.steps[sid]
            if dep.status is StepStatus.PENDING:
                dep.waiting -= 1
                if dep.waiting == 0:
                    dep.status, dep.queued_at, dep.released = StepStatus.QUEUED, at, fast
                    ready.append(dep)
        ready.sort(key=lambda s: s.position)
        released = [s.step_id for s in ready] if fast else self._release_held(run, room) if may_release else []
        events += [("step.queued", dep.step_id, {}) for dep in ready]
        run.unfinished -= 1
        run.in_flight, run.held = in_flight + len(released), run.held + len(ready) - len(released)
        if run.mode is Mode.STEP and skip:
            run.step_budget += 1  # a skip gives back the claim it spent: it ran nothing
        if run.unfinished == 0:
            events.append(("run.succeeded", None, {}))
            self._finish(run, RunStatus.SUCCEEDED, None)
        elif run.mode is Mode.STEP and not skip and run.status in _ACTIVE:
            run.status = RunStatus.PAUSED
            events.append(("run.paused", None, {"after_step": True}))
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
            for event in self._cancel_unfinished(run):
                self._append(run_id, *event)
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
                old, status=StepStatus.PENDING, error=None, finished_at=None, lease_until=None, started_at=None, released=False, retry_base=old.attempt,
                waiting_for=None, not_before=None,
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
        held = [s for s in self._by_position(run) if s.status is StepStatus.QUEUED and not s.released and s.parent is None][: max(room, 0)]
        for step in held:
            step.released = True
        return [s.step_id for s in held]

    def _cancel_unfinished(self, run: RunState) -> list[EventSpec]:
        at = now()
        events: list[EventSpec] = []
        for step in self._by_position(run):
            if step.status in _UNFINISHED:
                step.status, step.finished_at, step.lease_until, step.waiting_for = StepStatus.CANCELLED, at, None, None
                events.append(("step.cancelled", step.step_id, {}))
        return events

    def _finish(self, run: RunState, status: RunStatus, error: ErrorInfo | None) -> None:
        run.status, run.finished_at, run.error = status, now(), error
        run.in_flight = run.held = 0
        run.outputs = run_outputs({sid: s for sid, s in run.steps.items() if s.parent is None}) if status is RunStatus.SUCCEEDED else None
        run.usage = sum((s.usage for s in run.steps.values()), Usage())

    @staticmethod
    def _by_position(run: RunState) -> list[StepState]:
        """File order; a for_each step's items right after it, in item order."""
        return sorted(run.steps.values(), key=lambda s: (s.position, -1 if s.item is None else s.item["index"]))

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
        copied = copy.deepcopy(run)
        copied.steps = {s.step_id: s for s in self._by_position(copied)}
        return copied

    async def family(self, run_id: str) -> Family | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        names: list[str] = []
        up: RunState | None = run
        while up is not None:
            names.append(str(up.spec.get("name")))
            up = self._runs.get(up.parent_run_id) if up.parent_run_id else None
        children = [c for c in self._children.get(run_id, []) if not self._runs[c].status.finished]
        parent = self._runs.get(run.parent_run_id) if run.parent_run_id else None
        step = parent.steps.get(run.parent_step_id or "") if parent is not None else None
        current = step is not None and step.child_run_id == run.id
        return Family(dataclasses.replace(copy.deepcopy(run), steps={}), names[::-1], children, current)

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
