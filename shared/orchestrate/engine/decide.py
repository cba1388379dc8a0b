"""The run's decisions, pure: which steps are ready, which are skipped, when the run
ends. Every store applies these inside its own transaction, so the in-memory engine
and the durable protocol share one implementation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import ConflictError, TemplateError
from ..spec import Plan
from ..templates import evaluate, namespace
from .records import ErrorInfo, Mode, RunState, RunStatus, StepState, StepStatus


@dataclass
class Transition:
    """What to change after a step finished (or when a run starts)."""

    queue: list[str] = field(default_factory=list)
    skip: dict[str, str] = field(default_factory=dict)  # step id -> reason
    fail: dict[str, ErrorInfo] = field(default_factory=dict)  # a `when` that cannot be evaluated
    cancel: list[str] = field(default_factory=list)
    finish: RunStatus | None = None
    error: ErrorInfo | None = None
    pause: bool = False  # step-by-step mode: the run pauses after each step


def after_step(plan: Plan, run: RunState) -> Transition:
    """The decisions once a step of ``run`` has finished (its outcome is in ``run``)."""
    out = advance(plan, run.inputs, run.steps)
    out.pause = run.mode is Mode.STEP and out.finish is None
    return out


def advance(plan: Plan, inputs: Mapping[str, Any], steps: Mapping[str, StepState]) -> Transition:
    """Decide every pending step whose dependencies have all finished; repeat until
    nothing changes (a skip can decide the steps after it), then see if the run ended."""
    status = {sid: s.status for sid, s in steps.items()}
    out = Transition()
    changed = not any(st is StepStatus.FAILED for st in status.values())  # fail fast: decide nothing more
    while changed:
        changed = False
        for sid, sp in plan.steps.items():
            if status[sid] is not StepStatus.PENDING or not all(status[d].finished for d in sp.needs):
                continue
            changed = True
            if sp.step.when is not None:
                try:
                    go = evaluate(sp.step.when, condition_context(plan, sid, inputs, steps, status))
                except TemplateError as exc:
                    out.fail[sid] = ErrorInfo(exc.type, str(exc), sid)
                    status[sid] = StepStatus.FAILED
                    continue
                reason = "condition is false"
            else:
                blocked = sorted(d for d in sp.needs if status[d] is not StepStatus.SUCCEEDED)
                go = not blocked
                reason = f"dependency {', '.join(blocked)} did not succeed" if blocked else ""
            if go:
                out.queue.append(sid)
                status[sid] = StepStatus.QUEUED
            else:
                out.skip[sid] = reason
                status[sid] = StepStatus.SKIPPED
    failed = [sid for sid in plan.steps if status[sid] is StepStatus.FAILED]
    if failed:
        first = out.fail.get(failed[0]) or steps[failed[0]].error
        _fail_fast(out, status, first or ErrorInfo("step-failed", f"step '{failed[0]}' failed", failed[0]))
    elif all(s.finished for s in status.values()):
        out.finish = RunStatus.SUCCEEDED  # the store collects the run's outputs
    return out


def _fail_fast(out: Transition, status: dict[str, StepStatus], error: ErrorInfo) -> None:
    out.cancel = [sid for sid, st in status.items() if not st.finished and sid not in out.queue]
    out.queue = []
    out.finish = RunStatus.FAILED
    out.error = error


def run_outputs(steps: Mapping[str, StepState]) -> dict[str, Any]:
    """A run's outputs: each succeeded step's structured outputs, or its text."""
    return {sid: (s.outputs if s.outputs is not None else s.output) for sid, s in steps.items() if s.status is StepStatus.SUCCEEDED}


def needed_steps(plan: Plan, step_id: str) -> frozenset[str]:
    """The steps whose results a claim of ``step_id`` must read: its dependencies (the
    prompt), every earlier step in a conversation (the history), and the dependencies
    of any step with a ``when`` (the decisions after it may evaluate those)."""
    need = set(plan.steps[step_id].needs)
    if plan.conversation:
        need.update(plan.order[: plan.steps[step_id].index])
    for sp in plan.steps.values():
        if sp.step.when is not None:
            need.update(sp.needs)
    return frozenset(need)


def _step_view(state: StepState, status: StepStatus) -> Any:
    return namespace({"output": state.output, "outputs": namespace(state.outputs or {}), "status": status.value})


def condition_context(
    plan: Plan, step_id: str, inputs: Mapping[str, Any], steps: Mapping[str, StepState], status: Mapping[str, StepStatus]
) -> dict[str, Any]:
    needs = plan.steps[step_id].needs
    return {
        "inputs": namespace(dict(inputs)),
        "steps": namespace({d: _step_view(steps[d], status[d]) for d in needs}),
        **{d: steps[d].output for d in needs},
    }


def prompt_context(plan: Plan, step_id: str, inputs: Mapping[str, Any], steps: Mapping[str, StepState]) -> dict[str, Any]:
    """What a step's prompt may read: inputs, its dependencies, and its bare names."""
    sp = plan.steps[step_id]
    context = condition_context(plan, step_id, inputs, steps, {sid: s.status for sid, s in steps.items()})
    for name, binding in sp.bindings.items():
        if binding.kind == "input":
            context[name] = inputs.get(binding.source)
        elif binding.kind == "field":
            context[name] = (steps[binding.source].outputs or {}).get(binding.field or name)
        else:
            context[name] = steps[binding.source].output
    return context


def start(plan: Plan, inputs: Mapping[str, Any]) -> tuple[dict[str, StepState], Transition]:
    """The initial step states of a run and its first decisions."""
    steps = {sid: StepState(sid, sp.index) for sid, sp in plan.steps.items()}
    return steps, advance(plan, inputs, steps)


class Action(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STEP = "step"
    CANCEL = "cancel"
    RETRY = "retry"


@dataclass
class Control:
    """What a control action changes: the run's status, steps reset to pending
    (retry), the decisions that follow, and the steps to enqueue after commit."""

    action: Action
    status: RunStatus
    transition: Transition
    enqueue: list[str]
    reset: list[str] = field(default_factory=list)
    step_budget: int | None = None  # step mode: how many claims the run allows

    @property
    def event(self) -> str | None:
        """The event this action appends (a cancel's is the run's own `run.cancelled`)."""
        return {"pause": "run.paused", "resume": "run.resumed", "step": "run.resumed", "retry": "run.retried"}.get(self.action.value)


_ALLOWED = {
    Action.PAUSE: (RunStatus.QUEUED, RunStatus.RUNNING),
    Action.RESUME: (RunStatus.PAUSED,),
    Action.STEP: (RunStatus.PAUSED,),
    Action.CANCEL: (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED),
    Action.RETRY: (RunStatus.FAILED, RunStatus.CANCELLED),
}


def control(plan: Plan, run: RunState, action: Action) -> Control:
    """Decide a control action on ``run``; ConflictError if its status does not allow it."""
    if action is Action.STEP and run.mode is not Mode.STEP:
        raise ConflictError("only a run in step mode can be stepped; start it with mode 'step'")
    if run.status not in _ALLOWED[action]:
        allowed = " or ".join(s.value for s in _ALLOWED[action])
        raise ConflictError(f"cannot {action.value} a run that is {run.status.value}; the run must be {allowed}")
    queued = [sid for sid in plan.order if run.steps[sid].status is StepStatus.QUEUED]
    if action is Action.PAUSE:
        return Control(action, RunStatus.PAUSED, Transition(), [])
    if action is Action.RESUME:
        budget = 1 if run.mode is Mode.STEP else None
        return Control(action, RunStatus.RUNNING, Transition(), queued[:1] if budget else queued, step_budget=budget)
    if action is Action.STEP:
        return Control(action, RunStatus.RUNNING, Transition(), queued[:1], step_budget=1)
    if action is Action.CANCEL:
        unfinished = [sid for sid in plan.order if not run.steps[sid].status.finished]
        error = ErrorInfo("cancelled", "the run was cancelled")
        return Control(action, RunStatus.CANCELLED, Transition(cancel=unfinished, finish=RunStatus.CANCELLED, error=error), [])
    # Skipped steps are decided again too: a skip may have followed the failure.
    reset = [sid for sid in plan.order if run.steps[sid].status in (StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.SKIPPED)]
    steps = {sid: (StepState(sid, s.position, StepStatus.PENDING, attempt=s.attempt, retry_base=s.attempt) if sid in reset else s) for sid, s in run.steps.items()}
    transition = advance(plan, run.inputs, steps)
    return Control(action, RunStatus.RUNNING, transition, list(transition.queue), reset=reset, step_budget=1 if run.mode is Mode.STEP else None)
