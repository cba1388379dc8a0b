"""A `workflow` step: start one of the owner's workflows as a child run and wait for
it (``Park`` without a time: only the child's end resolves the step, see
``Engine.settle``).

The child's start is idempotent per step and run retry (its key is derived from the
parent run, the step and the retry generation, not the attempt), so a claim executed
again after a crash finds the child it already started instead of starting another."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ...errors import InputError, SpecError, TemplateError
from ...spec import build, resolve_inputs
from ...spec.plan import for_each_expression
from ...templates import evaluate_value, render
from .. import decide
from ..records import ErrorInfo, RunState, RunStatus, StepState
from ..store import Claim, Failure, Outcome, Park, Success

if TYPE_CHECKING:
    from ...spec import Plan
    from ..core import Engine


async def execute(engine: Engine, plan: Plan, claim: Claim) -> Outcome:
    from ...templates import in_render_thread

    step_id, run = claim.step_id, claim.run
    call = plan.steps[step_id].step.workflow
    assert call is not None
    asked = f"workflow id {call.id}" if call.id is not None else f"workflow '{call.name}'"
    try:
        inputs = await in_render_thread(child_inputs, plan, step_id, run.inputs, run.steps)
    except TemplateError as exc:
        return Failure(ErrorInfo(exc.type, f"step '{step_id}': {exc.message}", step_id))
    prompt = json.dumps({"workflow": call.id or call.name, "inputs": inputs}, ensure_ascii=False)

    def fail(type_: str, message: str) -> Failure:
        return Failure(ErrorInfo(type_, message, step_id), prompt)

    if engine.library is None:
        return fail("workflow-not-found", f"{asked} not found: this engine has no saved workflows")
    try:
        saved = await engine.library.find(run.owner_id, id=call.id, name=call.name)
    except SpecError as exc:  # a workflow file with that name that is not valid
        return fail("workflow-invalid", f"{asked} is invalid: {exc.problems[0].format(exc.file)}")
    if saved is None:
        return fail("workflow-not-found", f"{asked} not found")  # another user's is never found
    if call.version is not None and saved.version is not None and saved.version != call.version:
        return fail("workflow-version-mismatch", f"workflow '{saved.name}' is at version {saved.version}; the step asks for version {call.version}")
    family = await engine.store.family(run.id)
    lineage = [*(family.lineage if family is not None else [plan.workflow.name]), saved.name]
    if len(lineage) - 1 > engine.max_workflow_depth:
        chain = " -> ".join(lineage)
        return fail(
            "workflow-depth-exceeded",
            f"{chain}: a child run at depth {len(lineage) - 1} exceeds the limit of {engine.max_workflow_depth} (ORCHESTRATE_MAX_WORKFLOW_DEPTH); do these workflows call each other?",
        )
    try:
        child_plan = build(saved.spec)
        values = resolve_inputs(child_plan.workflow, inputs)
    except SpecError as exc:
        return fail("workflow-invalid", f"workflow '{saved.name}' is invalid: {exc.problems[0].format()}")
    except InputError as exc:
        return fail("child-inputs-invalid", f"the inputs for workflow '{saved.name}' are invalid: {'; '.join(exc.problems)}")
    generation = claim.attempt - claim.tries if claim.tries else 0  # a run retry starts a new child
    child = await engine.start(
        child_plan,
        values,
        owner_id=run.owner_id,
        workflow_id=saved.id,
        parent=(run.id, step_id),
        idempotency_key=f"orchestrate:child:{run.id}:{step_id}:{generation}",
    )
    if (child.parent_run_id, child.parent_step_id) != (run.id, step_id):  # the key was taken by another run
        return fail("child-run-conflict", f"the child run's idempotency key is used by run {child.id}")
    if child.status.finished:  # started by an earlier execution of this claim, and already over
        return child_outcome(child, step_id)
    return Park(None, {"kind": "workflow", "run_id": child.id, "workflow": saved.name}, prompt=prompt)


def child_inputs(plan: Plan, step_id: str, inputs: Mapping[str, Any], steps: Mapping[str, StepState]) -> dict[str, Any]:
    """The step's `inputs` with their templates evaluated: a string that is one
    ``{{ expression }}`` gives its value, any other string is rendered as text."""
    call = plan.steps[step_id].step.workflow
    assert call is not None
    context = decide.prompt_context(plan, step_id, inputs, steps)

    def value(raw: Any, where: str) -> Any:
        if isinstance(raw, str):
            expression = for_each_expression(raw)
            return evaluate_value(expression, context, where) if expression is not None else render(raw, context)
        if isinstance(raw, dict):
            return {k: value(v, f"{where}.{k}") for k, v in raw.items()}
        if isinstance(raw, list):
            return [value(v, f"{where}[{i}]") for i, v in enumerate(raw)]
        return raw

    evaluated = {name: value(raw, f"inputs.{name}") for name, raw in call.inputs.items()}
    try:  # a namespace (`steps.a.outputs`) is its fields
        result: dict[str, Any] = json.loads(json.dumps(evaluated, default=_fields))
    except (TypeError, ValueError):
        raise TemplateError("the inputs must be JSON values (text, numbers, lists, objects)") from None
    return result


def _fields(value: Any) -> Any:
    if isinstance(value, SimpleNamespace):
        return vars(value)
    raise TypeError(type(value).__name__)


def child_outcome(child: RunState, step_id: str) -> Success | Failure:
    """The parent step's outcome once its child run has ended."""
    name = child.spec.get("name") or "workflow"
    if child.status is RunStatus.SUCCEEDED:
        outputs = child.outputs or {}
        duration = int((child.finished_at - (child.started_at or child.created_at)).total_seconds() * 1000) if child.finished_at else 0
        return Success(None, json.dumps(outputs, ensure_ascii=False), outputs, "", child.usage, duration)
    if child.status is RunStatus.CANCELLED:
        return Failure(ErrorInfo("child-run-failed", f"child run {child.id} ({name}) was cancelled", step_id))
    error = child.error or ErrorInfo("failed", "the run failed")
    where = f" at step '{error.step_id}'" if error.step_id else ""
    return Failure(ErrorInfo("child-run-failed", f"child run {child.id} ({name}) failed{where}: [{error.type}] {error.message}", step_id))


__all__ = ["child_outcome", "execute"]
