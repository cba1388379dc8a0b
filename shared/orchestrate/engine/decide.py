"""The run's decisions, pure: which steps are ready, which are skipped, when the run
ends. Every store applies these inside its own transaction, so the in-memory engine
and the durable protocol share one implementation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import TemplateError
from ..spec import Plan
from ..templates import evaluate, namespace
from .records import ErrorInfo, RunStatus, StepState, StepStatus


@dataclass
class Transition:
    """What to change after a step finished (or when a run starts)."""

    queue: list[str] = field(default_factory=list)
    skip: dict[str, str] = field(default_factory=dict)  # step id -> reason
    fail: dict[str, ErrorInfo] = field(default_factory=dict)  # a `when` that cannot be evaluated
    cancel: list[str] = field(default_factory=list)
    finish: RunStatus | None = None
    error: ErrorInfo | None = None


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


def fail_step(plan: Plan, steps: Mapping[str, StepState], error: ErrorInfo) -> Transition:
    """A step failed for good: cancel what has not finished and fail the run."""
    out = Transition()
    _fail_fast(out, {sid: s.status for sid, s in steps.items()}, error)
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
