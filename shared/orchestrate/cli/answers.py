"""Answering approvals from the command line: `orchestrate run` (local) decides each
approval from its options, the terminal or the mock; `orchestrate watch` prints how to
answer one on a server."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..engine.kinds.approval import Decision
from ..engine.records import Event
from ..errors import InputError
from ..engine.decide import plan_step
from ..llm.mock import mock_value
from ..spec import Plan
from ..spec.inputs import coerce


def parse_fields(pairs: list[str], fields: list[dict[str, Any]], option: str = "--field") -> dict[str, Any]:
    """``name=value`` pairs, each converted to its declared field's type."""
    types = {f["name"]: f["type"] for f in fields}
    values: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            problems.append(f"{option} {pair!r}: expected name=value")
            continue
        try:
            values[name.strip()] = coerce(types.get(name.strip(), "string"), raw)
        except ValueError as exc:
            problems.append(f"{option} {name.strip()}: {exc}")
    if problems:
        raise InputError(problems)
    return values


def local_answers(
    plan: Plan, approve: list[str], reject: list[str], reason: str, fields: list[str], *, mock: bool, console: Console
) -> Callable[[Event], Awaitable[Decision | None]]:
    """How a local run answers its approvals: ``--approve STEP`` (with ``--field
    STEP.name=value``) or ``--reject STEP``; else a prompt on a terminal; else, with
    ``--mock``, approve with the default (or mock values). A run that could not answer
    an approval without a timeout is refused before it starts (InputError)."""
    steps = {sid: sp.step for sid, sp in plan.steps.items() if sp.step.approval is not None}
    problems = [f"--approve/--reject {sid}: no approval step '{sid}'" for sid in [*approve, *reject] if sid not in steps]
    by_step: dict[str, list[str]] = {}
    for pair in fields:
        sid, dot, rest = pair.partition(".")
        if not dot or sid not in steps:
            problems.append(f"--field {pair!r}: expected STEP.name=value for an approval step")
        else:
            by_step.setdefault(sid, []).append(rest)
    interactive = sys.stdin.isatty()
    for sid, step in steps.items():
        assert step.approval is not None
        if sid not in approve and sid not in reject and not interactive and not mock and step.approval.timeout is None:
            problems.append(
                f"step '{sid}' waits for an approval and nothing here can answer it: "
                f"run with --approve {sid} (and --field {sid}.name=value) or --reject {sid}, on a terminal, or with --mock"
            )
    if problems:
        raise InputError(problems)

    async def answer(event: Event) -> Decision | None:
        sid = event.step_id or ""
        declared = list(event.data.get("fields") or [])
        if sid in reject:
            return Decision(reason=reason or "rejected from the command line")
        if sid in approve:
            return Decision(fields=parse_fields(by_step.get(sid, []), declared, f"--field {sid}."))
        if interactive:
            return _ask(console, sid, event.data.get("message"), declared)
        step = steps[plan_step(sid)]
        assert step.approval is not None
        if mock:
            default = step.approval.default
            return Decision(fields=default if default is not None else {f["name"]: mock_value({"type": f["type"]}, f["name"], "0" * 16) for f in declared})
        return None  # waits for its timeout

    return answer


def _ask(console: Console, step_id: str, message: str | None, fields: list[dict[str, Any]]) -> Decision:
    from rich.prompt import Confirm, Prompt

    console.print(f"[bold magenta]{escape(step_id)}[/] waits for your approval" + (f": {escape(message)}" if message else ""))
    if not Confirm.ask("Approve?", console=console):
        return Decision(reason=Prompt.ask("Reason", console=console, default="rejected"))
    values: dict[str, Any] = {}
    for field in fields:
        while True:
            raw = Prompt.ask(f"{field['name']} ({field['type']})", console=console)
            try:
                values[field["name"]] = coerce(field["type"], raw)
                break
            except ValueError as exc:
                console.print(f"[red]{escape(str(exc))}[/]")
    return Decision(fields=values)


def how_to_answer(run_id: str, event: Event) -> str:
    """What `orchestrate watch` prints when a step waits for an approval."""
    sid = event.step_id or ""
    data = event.data
    fields = " ".join(f"--field {f['name']}=<{f['type']}>" for f in data.get("fields") or [])
    lines = [f"{sid} waits for approval" + (f": {data['message']}" if data.get("message") else "")]
    lines.append(f"  approve: orchestrate approve {run_id} {sid}" + (f" {fields}" if fields else ""))
    lines.append(f"  reject:  orchestrate reject {run_id} {sid} --reason '...'")
    if data.get("callback_url"):
        example = '{"action": "approve", "fields": {...}}' if fields else '{"action": "approve"}'
        lines.append(f"  or without a token: curl -X POST {shlex.quote(data['callback_url'])} -H 'Content-Type: application/json' -d {shlex.quote(example)}")
    if data.get("until"):
        lines.append(f"  (it times out at {data['until']})")
    return "\n".join(lines)
