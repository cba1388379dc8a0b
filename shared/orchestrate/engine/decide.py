"""The run's decisions, pure, shared by every store: the step graph a run's counters
start from, whether a claimed step runs or is skipped (decided from its dependencies
alone, when it is claimed), and which control actions a run's status allows. The
stores keep the counters (see the protocol-v2 migration and ``MemoryStore``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import ConflictError, TemplateError
from ..spec import Plan
from ..spec.model import MAX_ITEMS
from ..spec.plan import for_each_expression
from ..templates import evaluate, evaluate_value, namespace
from .records import ErrorInfo, Mode, RunState, RunStatus, StepState, StepStatus


@dataclass(frozen=True)
class StepNode:
    """A step as a run's rows hold it: what it waits for, what waits for it, and what
    its claim reads. The stores keep the counters; this is all they need of the plan."""

    step_id: str
    position: int
    needs: tuple[str, ...]
    reads: tuple[str, ...] | None  # None: same as needs
    dependents: tuple[str, ...]


def graph(plan: Plan) -> list[StepNode]:
    """The plan's steps with their dependents, in file order (linear in the edges)."""
    dependents: dict[str, list[str]] = {sid: [] for sid in plan.steps}
    for sid, sp in plan.steps.items():
        for need in sp.needs:
            dependents[need].append(sid)
    nodes = []
    for sid, sp in plan.steps.items():
        needs = tuple(sorted(sp.needs))
        # A conversation step reads every earlier turn (its history), not only the last.
        reads = tuple(plan.order[: sp.index]) if plan.conversation else None
        nodes.append(StepNode(sid, sp.index, needs, reads if reads != needs else None, tuple(dependents[sid])))
    return nodes


@dataclass(frozen=True)
class Skip:
    reason: str


def gate(plan: Plan, step_id: str, inputs: Mapping[str, Any], steps: Mapping[str, StepState]) -> Skip | ErrorInfo | None:
    """Whether a claimed step runs, decided from its dependencies alone: None (run it),
    Skip (its `when` is false, or without a `when`, a dependency did not succeed), or
    the error of a `when` that cannot be evaluated."""
    sp = plan.steps[step_id]
    status = {d: steps[d].status for d in sp.needs}
    if sp.step.when is not None:
        try:
            go = evaluate(sp.step.when, condition_context(plan, step_id, inputs, steps, status))
        except TemplateError as exc:
            return ErrorInfo(exc.type, str(exc), step_id)
        return None if go else Skip("condition is false")
    blocked = sorted(d for d in sp.needs if status[d] is not StepStatus.SUCCEEDED)
    return Skip(f"dependency {', '.join(blocked)} did not succeed") if blocked else None


def run_outputs(steps: Mapping[str, StepState]) -> dict[str, Any]:
    """A run's outputs: each succeeded step's structured outputs, or its text."""
    return {sid: (s.outputs if s.outputs is not None else s.output) for sid, s in steps.items() if s.status is StepStatus.SUCCEEDED}


def answer(state: StepState) -> Any:
    """A step's answer as templates see it: its text, or a for_each step's list."""
    if isinstance(state.outputs, list):
        return json.loads(state.output) if state.output else []
    return state.output


def _step_view(state: StepState, status: StepStatus) -> Any:
    outputs = state.outputs if isinstance(state.outputs, list) else namespace(state.outputs or {})
    return namespace({"output": answer(state), "outputs": outputs, "status": status.value})


def condition_context(
    plan: Plan, step_id: str, inputs: Mapping[str, Any], steps: Mapping[str, StepState], status: Mapping[str, StepStatus]
) -> dict[str, Any]:
    needs = plan.steps[step_id].needs
    return {
        "inputs": namespace(dict(inputs)),
        "steps": namespace({d: _step_view(steps[d], status[d]) for d in needs}),
        **{d: answer(steps[d]) for d in needs},
    }


def prompt_context(plan: Plan, step_id: str, inputs: Mapping[str, Any], steps: Mapping[str, StepState]) -> dict[str, Any]:
    """What a step's prompt may read: inputs, its dependencies, and its bare names."""
    sp = plan.steps[step_id]
    context = condition_context(plan, step_id, inputs, steps, {sid: s.status for sid, s in steps.items()})
    for name, binding in sp.bindings.items():
        if binding.kind == "input":
            context[name] = inputs.get(binding.source)
        elif binding.kind == "field":
            outputs = steps[binding.source].outputs
            context[name] = outputs.get(binding.field or name) if isinstance(outputs, dict) else None
        else:
            context[name] = answer(steps[binding.source])
    return context


def claim_context(plan: Plan, run: RunState, step_id: str) -> dict[str, Any]:
    """What a claimed step's templates read: its prompt context, and a for_each
    item's ``item`` and ``loop``."""
    context = prompt_context(plan, plan_step(step_id), run.inputs, run.steps)
    item = run.steps[step_id].item
    if item is not None:
        context.update(item_context(item))
    return context


def plan_step(step_id: str) -> str:
    """The plan's step for a step row: a for_each item ``drafts[3]`` runs ``drafts``."""
    return step_id.split("[", 1)[0]


def item_context(item: Mapping[str, Any]) -> dict[str, Any]:
    """What an item's prompt reads besides its step's context: ``item`` and ``loop``."""
    index, length = int(item["index"]), int(item["length"])
    loop = namespace({"index": index + 1, "index0": index, "length": length, "first": index == 0, "last": index == length - 1})
    return {"item": item["value"], "loop": loop}


def for_each_items(plan: Plan, step_id: str, inputs: Mapping[str, Any], steps: Mapping[str, StepState]) -> list[Any] | ErrorInfo:
    """The list a for_each step maps over, or the error naming the step and what it got."""
    step = plan.steps[step_id].step
    expression = for_each_expression(step.for_each or "")
    assert expression is not None  # validated when the workflow was parsed
    try:
        value = evaluate_value(expression, prompt_context(plan, step_id, inputs, steps), "for_each")
    except TemplateError as exc:
        return ErrorInfo(exc.type, f"step '{step_id}': {exc.message}", step_id)
    if not isinstance(value, (list, tuple)):
        return ErrorInfo("for-each-error", f"for_each of step '{step_id}' must give a list, not {_describe(value)}", step_id)
    if len(value) > MAX_ITEMS:
        return ErrorInfo("for-each-error", f"for_each of step '{step_id}' gave {len(value)} items; at most {MAX_ITEMS} are allowed", step_id)
    try:
        items: list[Any] = json.loads(json.dumps(list(value)))
    except (TypeError, ValueError):
        return ErrorInfo("for-each-error", f"for_each of step '{step_id}' must give a list of JSON values (text, numbers, lists, objects)", step_id)
    return items


def _describe(value: Any) -> str:
    if value is None:
        return "null (nothing)"
    kind = {str: "a string", bool: "a boolean", int: "a number", float: "a number", dict: "an object"}.get(type(value), f"a {type(value).__name__}")
    shown = repr(value)
    return f"{kind} ({shown[:60]}{'…' if len(shown) > 60 else ''})"


class Action(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STEP = "step"
    CANCEL = "cancel"
    RETRY = "retry"


@dataclass(frozen=True)
class Control:
    """A control action the run's status allows: the status it moves the run to, the
    steps a retry runs again, and step mode's budget. The store derives the rest."""

    action: Action
    status: RunStatus
    reset: list[str] = field(default_factory=list)
    step_budget: int | None = None  # step mode: how many claims the run allows


_ALLOWED = {
    Action.PAUSE: (RunStatus.QUEUED, RunStatus.RUNNING),
    Action.RESUME: (RunStatus.PAUSED,),
    Action.STEP: (RunStatus.PAUSED,),
    Action.CANCEL: (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED),
    Action.RETRY: (RunStatus.FAILED, RunStatus.CANCELLED),
}


def control(run: RunState, action: Action) -> Control:
    """Decide a control action on ``run``; ConflictError if its status does not allow it."""
    if action is Action.STEP and run.mode is not Mode.STEP:
        raise ConflictError("only a run in step mode can be stepped; start it with mode 'step'")
    if run.status not in _ALLOWED[action]:
        allowed = " or ".join(s.value for s in _ALLOWED[action])
        raise ConflictError(f"cannot {action.value} a run that is {run.status.value}; the run must be {allowed}")
    budget = 1 if run.mode is Mode.STEP and action in (Action.RESUME, Action.STEP, Action.RETRY) else None
    if action is Action.PAUSE:
        return Control(action, RunStatus.PAUSED)
    if action is Action.CANCEL:
        return Control(action, RunStatus.CANCELLED)
    if action is Action.RETRY:
        # Skipped steps are decided again too: a skip may have followed the failure.
        redo = (StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.SKIPPED)
        # A for_each step runs again as a whole (its items are made anew), not item by item.
        reset = [s.step_id for s in sorted(run.steps.values(), key=lambda s: s.position) if s.status in redo and s.parent is None]
        return Control(action, RunStatus.RUNNING, reset, budget)
    return Control(action, RunStatus.RUNNING, step_budget=budget)
