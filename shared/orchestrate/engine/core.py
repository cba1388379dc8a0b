"""The run protocol, one step per call: start a run; process a message by
claiming the step, executing it outside any transaction, and completing it.
Stores and queues are interfaces: memory + in-process locally, Postgres + SQS hosted."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..errors import ConflictError, NotFound
from ..llm.base import Provider
from ..spec import Plan, build, dump_spec
from ..templates import in_render_thread
from . import decide, on_error
from .kinds import EXECUTORS
from .kinds.workflow import child_outcome
from .library import WorkflowLibrary
from .queue import Queue
from .records import ErrorInfo, Mode, RunState, StepMessage, StepStatus, Usage, now
from .rerun import plan_rerun
from .store import Applied, Claim, Expand, Failure, NotDue, Outcome, Park, ReusedStep, Skipped, Store, Success

log = logging.getLogger("orchestrate.engine")


class RunFinished(Protocol):
    """Wakes the webhook sender when a run with a webhook URL ends."""

    async def run_finished(self, run_id: str) -> None: ...

LEASE_MARGIN = 30.0  # seconds a lease outlives the step's own timeout
MAX_LEASE = 900.0 + LEASE_MARGIN  # before the plan is known: the longest step timeout
DEFAULT_MAX_IN_FLIGHT = 50  # steps of one run released to the queue at once
DEFAULT_MAX_WORKFLOW_DEPTH = 5  # child runs nested at most this deep
MAX_WAKE_DELAY = 900.0  # seconds one wake-up message is delayed at most (SQS's limit): a longer wait re-arms


class Engine:
    def __init__(
        self,
        store: Store,
        queue: Queue,
        provider: Provider,
        *,
        default_model: str = "gpt-4o",
        webhooks: RunFinished | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        library: WorkflowLibrary | None = None,
        max_workflow_depth: int = DEFAULT_MAX_WORKFLOW_DEPTH,
        api_url: str | None = None,
    ) -> None:
        self.store = store
        self.library = library  # where `workflow` steps find their child's workflow
        self.max_workflow_depth = max_workflow_depth
        self.api_url = api_url  # where an approval's callback URL points (None: no callback URLs)
        self.max_in_flight = max_in_flight  # per run: the rest stays queued in the store
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
        parent: tuple[str, str] | None = None,
        rerun_of: tuple[str, str] | None = None,
        reused: Sequence[ReusedStep] = (),
        spec: dict[str, Any] | None = None,
    ) -> RunState:
        """Create a run with validated inputs and enqueue its first steps. A repeated
        ``idempotency_key`` returns the earlier run (see ``Store.create_run``). No
        template is evaluated here: a step's `when` is decided when it is claimed.
        ``parent`` (run id, step id) makes it a child run; ``rerun_of`` (source run id,
        the step it reruns from) a rerun, with its ``reused`` steps created finished.
        ``spec``: the snapshot to store, when it is not the plan's (a rerun's source)."""
        run = RunState(
            id=run_id or str(uuid.uuid4()),
            spec=spec if spec is not None else dump_spec(plan),
            inputs=dict(inputs),
            mode=mode,
            owner_id=owner_id,
            workflow_id=workflow_id,
            webhook_url=webhook_url,
            parent_run_id=parent[0] if parent else None,
            parent_step_id=parent[1] if parent else None,
            rerun_of_run_id=rerun_of[0] if rerun_of else None,
            rerun_from=rerun_of[1] if rerun_of else None,
        )
        started = await self.store.create_run(
            run,
            decide.graph(plan),
            max_in_flight=self.max_in_flight,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            reused=reused,
        )
        if started.run.id == run.id:  # not a replay of an earlier request
            self._remember(run.id, plan)
            await self._enqueue(run.id, started.queued)
        return started.run

    async def rerun(
        self,
        source: RunState,
        from_step: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        mode: Mode = Mode.AUTO,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        plan: Plan | None = None,
    ) -> RunState:
        """A new run of ``source``'s spec snapshot (or ``plan``: a local rerun of an edited
        file) from ``from_step``: the steps not downstream of it reuse their recorded
        answers (see ``rerun.plan_rerun``), in the transaction that creates the run."""
        if not source.status.finished:
            raise ConflictError(f"run {source.id} is {source.status.value}: rerun a finished run (cancel it first to rerun it now)")
        stored = plan is None
        plan = plan or self.plan_for(source)
        decided = plan_rerun(plan, source, from_step, inputs, outputs)
        return await self.start(
            plan,
            decided.inputs,
            run_id=run_id,
            owner_id=source.owner_id,
            workflow_id=source.workflow_id,
            mode=mode,
            webhook_url=webhook_url,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            rerun_of=(source.id, from_step),
            reused=decided.reused,
            spec=source.spec if stored else None,
        )

    async def process(self, message: StepMessage, *, lease_seconds: float | None = None) -> bool:
        """Handle one queue message. Returns False when there was nothing to do
        (duplicate, stale, paused or finished run): the message is acknowledged."""
        cached = self._plans.get(message.run_id)
        lease = MAX_LEASE  # before the plan is known: the longest step
        if cached is not None and decide.plan_step(message.step_id) in cached.steps:
            lease = cached.steps[decide.plan_step(message.step_id)].step.timeout + LEASE_MARGIN
        claim = await self.store.claim(message.run_id, message.step_id, lease_seconds or lease, with_spec=cached is None)
        if isinstance(claim, NotDue):  # a wait longer than one message's delay: re-arm
            await self._wake_at(message.run_id, message.step_id, claim.until)
            return False
        if claim is None:
            log.debug("step %s/%s: nothing to claim (a duplicate message, or the step or run moved on)", message.run_id, message.step_id)
            return False
        plan = self.plan_for(claim.run)
        state = claim.run.steps[claim.step_id]
        step = plan.steps[decide.plan_step(claim.step_id)].step
        # An item's step was gated when the list was made; a step is gated when claimed.
        # A `when:` is template work: off the event loop, in the render threads.
        gate = None if state.item is not None else await in_render_thread(decide.gate, plan, claim.step_id, claim.run.inputs, claim.run.steps)
        outcome: Outcome
        if isinstance(gate, decide.Skip):
            outcome = Skipped(gate.reason)
        elif gate is not None:  # a `when` that cannot be evaluated
            outcome = Failure(gate)
        elif claim.attempts_used > step.retry.max_attempts + state.woken:  # a wake is one claim more
            # Earlier invocations died before recording anything (a crash, a kill at the
            # function's timeout): give up rather than re-run the step forever.
            reason = f"the step did not finish in {step.retry.max_attempts} attempts: its invocation crashed or timed out each time"
            outcome = Failure(ErrorInfo("step-abandoned", reason, claim.step_id))
        else:
            outcome = await self._execute(plan, claim)
        if isinstance(outcome, Failure):
            outcome = self._on_error(plan, claim.run, claim.step_id, outcome)
        applied = await self.store.complete(claim, outcome)
        if applied is None:
            log.info("discarded a late result for %s/%s attempt %s", claim.run.id, claim.step_id, claim.attempt)
            return True
        await self._applied(claim.run, applied)
        if isinstance(outcome, Park):
            if outcome.until is not None:
                await self._wake_at(claim.run.id, claim.step_id, outcome.until)
            if self.webhooks is not None and claim.run.webhook_url:
                await self.webhooks.run_finished(claim.run.id)  # wakes the sender of run.waiting
            if outcome.info.get("kind") == "workflow":  # its child may have ended before it parked
                await self.settle(str(outcome.info["run_id"]))
        return True

    async def resolve(self, run_id: str, step_id: str, outcome: Success | Failure, *, user_id: str | None = None) -> Applied | None:
        """End a waiting step (an approval's answer, a child run's end); None if it is
        not waiting (already answered, timed out, cancelled) or not ``user_id``'s."""
        if isinstance(outcome, Failure):
            run = await self.store.get_run(run_id, user_id=user_id)
            if run is None or step_id not in run.steps:
                return None
            outcome = self._on_error(self.plan_for(run), run, step_id, outcome)
        applied = await self.store.resolve(run_id, step_id, outcome, user_id=user_id)
        if applied is not None:
            run = await self.store.get_run(run_id, user_id=user_id)
            assert run is not None
            await self._applied(run, applied)
        return applied

    @staticmethod
    def _on_error(plan: Plan, run: RunState, step_id: str, failure: Failure) -> Failure | Success:
        """A failure for good, as the step's `on_error` says (an item's: for its step)."""
        step = plan.steps[decide.plan_step(step_id)].step
        item = run.steps[step_id].item
        if item is None:
            return on_error.apply(step, failure)
        return on_error.apply(step, dataclasses.replace(failure, tolerate=step.tolerated_failures(int(item["length"]))), item=True)

    async def _applied(self, run: RunState, applied: Applied) -> None:
        await self._enqueue(run.id, applied.queued, applied.delay)
        if applied.finished:
            self._plans.pop(run.id, None)
            await self._finished(run)

    async def _wake_at(self, run_id: str, step_id: str, until: dt.datetime) -> None:
        delay = min(max((until - now()).total_seconds(), 0.0), MAX_WAKE_DELAY)
        await self.queue.send([StepMessage(run_id, step_id)], delay)

    async def _finished(self, run: RunState) -> None:
        # The delivery row was written with the run's end; this only wakes its sender.
        if self.webhooks is not None and run.webhook_url:
            await self.webhooks.run_finished(run.id)
        await self.settle(run.id)

    async def settle(self, run_id: str) -> None:
        """After a run ended: its unfinished child runs are cancelled, and a child run
        resolves its parent's `workflow` step with its outputs or its error. Safe to
        repeat: the sweeper does it for a process that died in between."""
        family = await self.store.family(run_id)
        if family is None or not family.run.status.finished:
            return
        for child in family.active_children:
            try:
                await self.control(child, decide.Action.CANCEL)
            except (ConflictError, NotFound):
                pass  # it ended meanwhile
        run = family.run
        if run.parent_run_id is not None and run.parent_step_id is not None and family.current_child:
            await self.resolve(run.parent_run_id, run.parent_step_id, child_outcome(run, run.parent_step_id))

    async def control(self, run_id: str, action: decide.Action, *, user_id: str | None = None) -> RunState:
        """Pause, resume, step, cancel or retry a run; enqueue what it made ready."""
        applied = await self.store.control(run_id, lambda run: decide.control(run, action), user_id=user_id)
        await self._enqueue(run_id, applied.queued)
        run = await self.store.get_run(run_id, user_id=user_id)
        assert run is not None
        if action in (decide.Action.RESUME, decide.Action.STEP):
            # A wait that came due while paused had its wake-up refused: send it again.
            for state in run.steps.values():
                if state.status is StepStatus.WAITING and state.not_before is not None:
                    await self._wake_at(run_id, state.step_id, state.not_before)
        if applied.finished:
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

    async def _expand(self, plan: Plan, claim: Claim) -> Outcome:
        """A for_each step's claim: its list, each item to run as an execution of its own."""
        step = plan.steps[claim.step_id].step
        items = await in_render_thread(decide.for_each_items, plan, claim.step_id, claim.run.inputs, claim.run.steps)
        if isinstance(items, ErrorInfo):
            return Failure(items)
        if not items:  # nothing to map over: the answer is the empty list
            return Success("", "[]", [], "", Usage(), 0)
        return Expand(items, step.item_concurrency)

    async def _execute(self, plan: Plan, claim: Claim) -> Outcome:
        """Run a claimed step. Whatever happens ends in an outcome to record: a step is
        never left running until its lease lapses, to be claimed and crash again."""
        where = f"{claim.run.id}/{claim.step_id} attempt {claim.attempt}"
        step = plan.steps[decide.plan_step(claim.step_id)].step
        try:
            if step.for_each is not None and claim.run.steps[claim.step_id].item is None:
                outcome = await self._expand(plan, claim)
            else:
                outcome = await EXECUTORS[step.kind](self, plan, claim)
        except (MemoryError, RecursionError) as exc:
            log.error("step %s failed: %s", where, type(exc).__name__)
            return Failure(ErrorInfo("step-crashed", f"the step failed: {type(exc).__name__}", claim.step_id))
        except Exception:
            log.exception("step %s failed unexpectedly", where)  # a bug: keep the traceback
            return Failure(ErrorInfo("internal-error", "the step failed unexpectedly; the error was logged", claim.step_id))
        if isinstance(outcome, Failure) and outcome.error.type == "template-error":
            log.info("step %s failed: %s", where, outcome.error.message)
        return outcome

__all__ = ["Applied", "Engine"]
