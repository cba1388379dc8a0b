"""Static validation and the compiled plan: who depends on whom, checked before
anything runs. Every problem is reported at once, located in the file."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import Problem, SpecError
from ..templates import Reference, analyse
from .inputs import field_problems
from .model import STEP_ID_PATTERN, InputSpec, OnErrorDefault, OutputSpec, Step, StepInput, Workflow
from .problems import dedupe, format_path, from_validation_error, locate, suggest
from .yamlsource import Marks

USER = "user"
RUNNABLE_KINDS = frozenset({"prompt", "approval", "wait", "workflow"})  # step kinds the engine can execute
ITEM_NAMES = ("item", "loop")  # what a for_each step's prompt reads of its item
_ONE_EXPRESSION = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


def for_each_expression(source: str) -> str | None:
    """The expression inside a for_each's ``{{ ... }}``; None if it is not exactly one."""
    match = _ONE_EXPRESSION.match(source)
    if match is None or "{{" in match.group(1) or "}}" in match.group(1):
        return None
    return match.group(1)


def declared_outputs(step: Step) -> list[OutputSpec]:
    """The named fields of a step's answer: its `outputs`, or an approval's `fields`."""
    return step.approval.fields if step.approval is not None else step.outputs


def parse_until(text: str) -> dt.datetime | str:
    """A `wait: until` time (ISO 8601 with its timezone), or the problem with it."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return f"`until` must be an ISO 8601 time such as 2026-12-24T18:00:00+01:00, not {text.strip()[:60]!r}"
    if when.tzinfo is None:
        return f"`until` needs a timezone (such as Z or +01:00): {text.strip()[:60]!r} could be any time"
    return when


def until_problem(text: str) -> str | None:
    parsed = parse_until(text)
    return parsed if isinstance(parsed, str) else None


@dataclass(frozen=True)
class Binding:
    """What a bare ``{{ name }}`` in a step's prompt stands for."""

    kind: str  # "input" (a workflow input), "output" (a step's whole answer), "field"
    source: str  # input name or step id
    field: str | None = None


@dataclass(frozen=True)
class StepPlan:
    step: Step
    index: int
    needs: frozenset[str]  # every step this one waits for
    bindings: Mapping[str, Binding]
    inputs: frozenset[str] = frozenset()  # the workflow inputs it reads (a rerun with edited inputs re-runs it)


@dataclass(frozen=True)
class Plan:
    """A validated workflow with its dependency graph."""

    workflow: Workflow
    steps: Mapping[str, StepPlan]  # in file order
    conversation: bool  # v0.1 style: in order, each step sees the earlier turns

    @property
    def order(self) -> list[str]:
        return list(self.steps)

    def roots(self) -> list[str]:
        return [sid for sid, sp in self.steps.items() if not sp.needs]

    def dependents(self, step_id: str) -> list[str]:
        return [sid for sid, sp in self.steps.items() if step_id in sp.needs]


def build(data: Any, marks: Marks | None = None, file: str | None = None) -> Plan:
    """Validate a parsed document and compile it. Raises SpecError with every problem."""
    marks = marks or {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise SpecError([Problem("", f"a workflow must be a mapping with `name` and `steps`, not {kind}", 1, 1)], file)
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        problems = from_validation_error(exc, Workflow, marks)
        problems += _later_problems(data, exc, marks)
        raise SpecError(dedupe(_sorted(problems)), file) from None
    return compile_workflow(workflow, marks, file)


def _later_problems(data: dict[str, Any], error: ValidationError, marks: Marks) -> list[Problem]:
    """When some steps are malformed, still check references, ids and cycles of the
    rest, so one pass reports every problem. Malformed steps become placeholders
    that keep their id (when it is usable) and read nothing."""
    bad = {e["loc"][1] for e in error.errors() if len(e["loc"]) > 1 and e["loc"][0] == "steps" and isinstance(e["loc"][1], int)}
    if not bad or any(e["loc"][:1] != ("steps",) for e in error.errors()):
        return _duplicate_ids(data, marks)
    steps = []
    for index, raw in enumerate(data["steps"]):
        if index not in bad:
            steps.append(raw)
            continue
        sid = raw.get("id") if isinstance(raw, dict) else None
        usable = isinstance(sid, str) and re.fullmatch(STEP_ID_PATTERN, sid) is not None
        steps.append({"id": sid if usable else f"invalid_step_{index}", "prompt": "-"})
    try:
        workflow = Workflow.model_validate({**data, "steps": steps})
        compile_workflow(workflow, marks)
    except (ValidationError, SpecError) as exc:
        return exc.problems if isinstance(exc, SpecError) else []
    return []


def compile_workflow(workflow: Workflow, marks: Marks | None = None, file: str | None = None) -> Plan:
    marks = marks or {}
    checker = _Checker(workflow, marks)
    workflow = checker.hoist_user_inputs()
    plan = checker.compile(workflow)
    if checker.problems:
        raise SpecError(_sorted(checker.problems), file)
    return plan


class _Checker:
    def __init__(self, workflow: Workflow, marks: Marks) -> None:
        self.workflow = workflow
        self.marks = marks
        self.problems: list[Problem] = []
        self.ids = [s.id for s in workflow.steps]
        self.inputs_read: dict[str, set[str]] = {}  # step id -> workflow inputs its templates read

    def add(self, path: tuple[str | int, ...], message: str, template_line: int | None = None) -> None:
        line, column = locate(path, self.marks)
        if template_line and template_line > 1:
            message += f" (template line {template_line})"
        self.problems.append(Problem(format_path(path), message, line, column))

    def hoist_user_inputs(self) -> Workflow:
        """v0.2's ``source: user`` step inputs become workflow inputs."""
        inputs = dict(self.workflow.inputs)
        for step in self.workflow.steps:
            for item in step.inputs:
                if item.source == USER and item.name not in inputs:
                    inputs[item.name] = InputSpec(type="string", description=item.description)
        if inputs == self.workflow.inputs:
            return self.workflow
        return self.workflow.model_copy(update={"inputs": inputs})

    def compile(self, workflow: Workflow) -> Plan:
        seen: dict[str, int] = {}
        for index, step in enumerate(workflow.steps):
            if step.id in seen:
                self.add(("steps", index, "id"), f"duplicate step id '{step.id}' (first used by steps[{seen[step.id]}])")
            else:
                seen[step.id] = index
        by_id = {s.id: s for s in reversed(workflow.steps)}  # the first of duplicates wins
        plans: dict[str, StepPlan] = {}
        refers = False
        for index, step in enumerate(workflow.steps):
            needs, bindings = self._step_needs(workflow, by_id, index, step)
            refers = refers or bool(needs)
            reads = frozenset(self.inputs_read.get(step.id, ()))
            plans.setdefault(step.id, StepPlan(step, index, frozenset(needs), bindings, reads))
        conversation = workflow.conversation if workflow.conversation is not None else (not refers and len(plans) > 1)
        if conversation:
            if refers:
                self.add(("conversation",), "a conversation runs steps in order; its steps cannot refer to each other or use `needs`")
            order = list(plans)
            plans = {sid: StepPlan(sp.step, sp.index, frozenset(order[i - 1 : i]), sp.bindings, sp.inputs) for i, (sid, sp) in enumerate(plans.items())}
        else:
            self._check_cycles(plans)
        return Plan(workflow, plans, conversation)

    def _step_needs(self, workflow: Workflow, by_id: dict[str, Step], index: int, step: Step) -> tuple[set[str], dict[str, Binding]]:
        at = ("steps", index)
        needs: set[str] = set()
        bindings: dict[str, Binding] = {}
        for i, item in enumerate(step.inputs):
            binding = self._bind(by_id, item, (*at, "inputs", i))
            if binding:
                bindings[item.name] = binding
                if binding.kind != "input":
                    needs.add(binding.source)
                else:
                    self.inputs_read.setdefault(step.id, set()).add(binding.source)
        for i, need in enumerate(step.needs):
            if need not in by_id:
                self.add((*at, "needs", i), f"unknown step '{need}'{suggest(need, by_id)}")
            else:
                needs.add(need)
        if step.kind not in RUNNABLE_KINDS:
            self.add((*at, step.kind), f"`{step.kind}` steps cannot run yet")
        self._check_kind(step, at)
        if step.for_each is None:
            for field in ("concurrency", "on_item_error"):
                if field in step.model_fields_set:
                    self.add((*at, field), f"`{field}` applies only to a step with `for_each`")
        for_each = for_each_expression(step.for_each) if step.for_each is not None else None
        if step.for_each is not None and for_each is None:
            self.add((*at, "for_each"), "`for_each` must be one expression giving a list, as in \"{{ steps.research.outputs.pains }}\"")
        templates: list[tuple[tuple[str | int, ...], str | None, bool]] = [
            (("prompt",), step.prompt, False),
            (("when",), step.when, True),
            (("for_each",), for_each, True),
            (("approval", "message"), step.approval.message if step.approval else None, False),
            (("wait", "until"), step.wait.until if step.wait else None, False),
        ]
        if step.workflow is not None:
            if step.for_each is not None:
                self.add((*at, "for_each"), "`for_each` cannot be used on a `workflow` step")
            templates += [(("workflow", "inputs", *where), text, False) for where, text in template_strings(step.workflow.inputs)]
        for field_path, source, expression in templates:
            if source is None:
                continue
            field = str(field_path[0])
            analysis = analyse(source, expression=expression)
            path = (*at, *field_path)
            for message, line in analysis.problems:
                self.add(path, message, line)
            for ref in analysis.references:
                if ref.kind == "name" and ref.name in ITEM_NAMES and ref.name not in bindings and ref.name not in by_id:
                    if field in ("when", "for_each") or step.for_each is None:
                        where = "a step's prompt with `for_each`" if step.for_each is not None else "a step with `for_each`"
                        if ref.name == "item" or step.for_each is not None:
                            self.add(path, f"`{ref.name}` is only defined in {where}")
                            continue
                    else:
                        continue
                target = self._check_reference(workflow, by_id, step, bindings, ref, path)
                if target:
                    needs.add(target)
        if step.id in needs:
            self.add(at, f"step '{step.id}' refers to itself")
            needs.discard(step.id)
        return needs, bindings

    def _check_kind(self, step: Step, at: tuple[str | int, ...]) -> None:
        """What only some kinds (and `on_error`) take, checked where it is written."""
        declared = declared_outputs(step)
        if isinstance(step.on_error, OnErrorDefault) and declared and step.for_each is None:
            what = "`fields`" if step.approval is not None else "`outputs`"
            for wrong in field_problems(declared, step.on_error.default, "output"):
                self.add((*at, "on_error", "default"), f"the default must match the step's {what}: {wrong}")
        if step.kind in ("approval", "wait") and step.outputs:
            hint = "; an approval's answer is declared by its `fields`" if step.approval else ""
            self.add((*at, "outputs"), f"`outputs` do not apply to a `{step.kind}` step{hint}")
        if step.wait is not None:
            wait = step.wait
            if (wait.seconds is None) == (wait.until is None):
                self.add((*at, "wait"), "`wait` takes exactly one of `seconds` (how long) or `until` (an ISO 8601 time with its timezone)")
            elif wait.until is not None and "{{" not in wait.until:
                bad = until_problem(wait.until)
                if bad:
                    self.add((*at, "wait", "until"), bad)
        if step.approval is not None:
            approval, where = step.approval, (*at, "approval")
            if "on_timeout" in approval.model_fields_set and approval.timeout is None:
                self.add((*where, "on_timeout"), "`on_timeout` needs a `timeout` (seconds)")
            if approval.on_timeout == "default" and approval.default is None:
                self.add((*where, "on_timeout"), "`on_timeout: default` needs a `default` answer (the values of the `fields`)")
            if approval.default is not None:
                if approval.on_timeout != "default":
                    self.add((*where, "default"), "`default` is used only with `on_timeout: default`")
                for wrong in field_problems(approval.fields, approval.default):
                    self.add((*where, "default"), f"the default must match the `fields`: {wrong}")

    def _bind(self, by_id: dict[str, Step], item: StepInput, path: tuple[str | int, ...]) -> Binding | None:
        if item.source == USER:
            return Binding("input", item.name)
        source = by_id.get(item.source)
        if source is None:
            self.add((*path, "source"), f"unknown source '{item.source}': use a step id or 'user'{suggest(item.source, by_id)}")
            return None
        if any(o.name == item.name for o in declared_outputs(source)):
            return Binding("field", source.id, item.name)
        return Binding("output", source.id)

    def _check_reference(
        self, workflow: Workflow, by_id: dict[str, Step], step: Step, bindings: dict[str, Binding], ref: Reference, path: tuple[str | int, ...]
    ) -> str | None:
        """Check one reference; return the step it makes this one depend on."""
        if ref.kind == "input":
            self.inputs_read.setdefault(step.id, set()).add(ref.name)
            if ref.name not in workflow.inputs:
                self.add(path, f"unknown input '{ref.name}'{suggest(ref.name, workflow.inputs) or '; declare it under `inputs:`'}")
            return None
        if ref.kind == "name":
            if ref.name in bindings:
                return None  # dependency already recorded by the binding
            if ref.name in by_id:
                return ref.name
            known = [*bindings, *by_id]
            hint = suggest(ref.name, known) or (f"; did you mean inputs.{ref.name}?" if ref.name in workflow.inputs else "")
            self.add(path, f"unknown name '{ref.name}'{hint}")
            return None
        target = by_id.get(ref.name)
        if target is None:
            self.add(path, f"unknown step '{ref.name}'{suggest(ref.name, by_id)}")
            return None
        if ref.field == "outputs" and ref.subfield is not None and target.kind != "workflow":  # a child's outputs are its own
            names = [o.name for o in declared_outputs(target)]
            if not names:
                self.add(path, f"step '{ref.name}' declares no outputs; use steps.{ref.name}.output")
            elif ref.subfield not in names:
                self.add(path, f"step '{ref.name}' has no output '{ref.subfield}'{suggest(ref.subfield, names)}")
        return ref.name

    def _check_cycles(self, plans: dict[str, StepPlan]) -> None:
        state: dict[str, int] = {}  # 1 visiting, 2 done
        for start in plans:
            stack: list[tuple[str, list[str]]] = [(start, sorted(plans[start].needs))]
            path = [start]
            if state.get(start):
                continue
            state[start] = 1
            while stack:
                node, pending = stack[-1]
                if not pending:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                    continue
                nxt = pending.pop()
                if nxt not in plans or state.get(nxt) == 2:
                    continue
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt) :] + [nxt]
                    self.add(("steps", plans[nxt].index), "dependency cycle: " + " -> ".join(cycle))
                    continue
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(plans[nxt].needs)))


def template_strings(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string in a JSON value (a workflow step's inputs), with its path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [found for key, child in value.items() for found in template_strings(child, (*path, key))]
    if isinstance(value, list):
        return [found for i, child in enumerate(value) for found in template_strings(child, (*path, i))]
    return []


def _duplicate_ids(data: dict[str, Any], marks: Marks) -> list[Problem]:
    steps = data.get("steps")
    if not isinstance(steps, list):
        return []
    seen: dict[str, int] = {}
    out = []
    for index, step in enumerate(steps):
        sid = step.get("id") if isinstance(step, dict) else None
        if isinstance(sid, str):
            if sid in seen:
                line, column = locate(("steps", index, "id"), marks)
                out.append(Problem(f"steps[{index}].id", f"duplicate step id '{sid}' (first used by steps[{seen[sid]}])", line, column))
            else:
                seen[sid] = index
    return out


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
