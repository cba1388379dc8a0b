"""Rerun from a step: which steps of a finished run a new run reuses (their recorded
answers copied: no call, no tokens) and which it runs again.

A step runs again when it is ``from`` or downstream of it, when it reads a run input
the rerun changes, when the source run did not finish it (failed, cancelled, never
reached), or when it is downstream of a step whose answer the rerun edits. Every other
step is reused as the source run left it: succeeded (with its answer) or skipped."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import jsondata
from ..errors import OrchestrateError
from ..spec import Plan, resolve_inputs
from ..spec.problems import suggest
from .records import RunState, StepStatus
from .store import ReusedStep

_REUSABLE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)


class RerunError(OrchestrateError):
    """A rerun request names a step that does not exist or cannot be edited. ``problems``
    are (path, message): ``from`` or ``outputs.<step>``."""

    type = "invalid-rerun"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


@dataclass(frozen=True)
class RerunPlan:
    inputs: dict[str, Any]  # the new run's inputs, resolved
    reused: list[ReusedStep]  # in file order
    rerun: list[str]  # the steps that run again, in file order


def plan_rerun(
    plan: Plan, source: RunState, from_step: str, inputs: Mapping[str, Any] | None = None, outputs: Mapping[str, Any] | None = None
) -> RerunPlan:
    """Decide a rerun of ``source`` (run with ``plan``) from ``from_step``; RerunError
    names a bad ``from`` or edited output, InputError bad inputs (checked like a start)."""
    problems: list[tuple[str, str]] = []
    if from_step not in plan.steps:
        problems.append(("from", f"unknown step '{from_step}'{suggest(from_step, list(plan.steps))}"))
    declared = plan.workflow.inputs
    old_inputs = {k: v for k, v in source.inputs.items() if k in declared}
    new_inputs = resolve_inputs(plan.workflow, {**old_inputs, **(inputs or {})})
    changed = {k for k in declared if _canonical(new_inputs.get(k)) != _canonical(source.inputs.get(k))}
    dependents = {sid: plan.dependents(sid) for sid in plan.steps}
    downstream = _closure([from_step] if from_step in plan.steps else [], dependents, frozenset())
    edits: dict[str, tuple[str | None, dict[str, Any] | list[Any] | None]] = {}
    for sid, value in (outputs or {}).items():
        if sid not in plan.steps:
            problems.append((f"outputs.{sid}", f"unknown step '{sid}'{suggest(sid, list(plan.steps))}"))
        elif sid in downstream:
            problems.append((f"outputs.{sid}", f"step '{sid}' runs again in this rerun (it is '{from_step}' or downstream of it): edit the output of an earlier step"))
        else:
            edit = _edited(plan, sid, value)
            if isinstance(edit, str):
                problems.append((f"outputs.{sid}", edit))
            else:
                edits[sid] = edit
    if problems:
        raise RerunError(problems)
    seeds = [from_step]
    seeds += [sid for sid, sp in plan.steps.items() if sp.inputs & changed]
    seeds += [sid for sid in plan.steps if sid not in edits and (sid not in source.steps or source.steps[sid].status not in _REUSABLE)]
    seeds += [d for sid in edits for d in dependents[sid]]
    rerun = _closure([s for s in seeds if s not in edits], dependents, frozenset(edits))
    reused = []
    for sid in plan.steps:
        if sid in rerun:
            continue
        state = source.steps.get(sid)
        prompt, model = (state.prompt, state.model) if state is not None else (None, None)
        if sid in edits:
            output, structured = edits[sid]
            reused.append(ReusedStep(sid, StepStatus.SUCCEEDED, prompt, output, structured, model, edited=True))
        else:
            assert state is not None
            reused.append(ReusedStep(sid, state.status, prompt, state.output, copy.deepcopy(state.outputs), model))
    return RerunPlan(new_inputs, reused, [sid for sid in plan.steps if sid in rerun])


def _closure(seeds: list[str], dependents: Mapping[str, list[str]], stop: frozenset[str]) -> set[str]:
    """The seeds and every step downstream of them, not entering ``stop``."""
    found: set[str] = set()
    todo = list(seeds)
    while todo:
        sid = todo.pop()
        if sid in found or sid in stop:
            continue
        found.add(sid)
        todo += dependents[sid]
    return found


def _edited(plan: Plan, step_id: str, value: Any) -> tuple[str | None, dict[str, Any] | list[Any] | None] | str:
    """An edited answer as (output, outputs), or what is wrong with it."""
    step = plan.steps[step_id].step
    unstorable = jsondata.problem(value)
    if unstorable is not None:
        return f"{unstorable[0] + ': ' if unstorable[0] else ''}{unstorable[1]}"
    if step.for_each is not None:
        if not isinstance(value, list):
            return "a for_each step's output is a list (one answer per item)"
        return json.dumps(value, ensure_ascii=False), value
    if step.outputs or step.kind == "workflow":
        if not isinstance(value, dict):
            names = ", ".join(o.name for o in step.outputs)
            return f"step '{step_id}' has structured outputs: give an object" + (f" with {names}" if names else "")
        for out in step.outputs:
            if out.name not in value:
                return f"missing field '{out.name}'"
            if not _fits(out.type, value[out.name]):
                return f"field '{out.name}' must be {'an' if out.type[0] in 'aeiou' else 'a'} {out.type}"
        unknown = sorted(set(value) - {o.name for o in step.outputs}) if step.outputs else []
        if unknown:
            return f"unknown field '{unknown[0]}'{suggest(unknown[0], [o.name for o in step.outputs])}"
        return json.dumps(value, ensure_ascii=False), value
    if not isinstance(value, str):
        return f"step '{step_id}' answers text: give a string"
    return value, None


def _fits(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
