"""Prompt templates and ``when`` conditions: Jinja2 in a sandbox, strict undefined.

Static analysis (``references``) finds what a template reads so the spec can check
references and derive dependencies before anything runs; rendering happens per step,
in a worker thread (``render_async``), never on the event loop: a render may use up to
a second of CPU (see ``sandbox``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, TypeVar

import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes

from .errors import TemplateError
from .sandbox import MAX_TEXT, BoundedSandbox, budget

MAX_RENDERED = MAX_TEXT
T = TypeVar("T")

# Structured values (arrays, objects) render as JSON, not as Python reprs (the sandbox's
# finalize); autoescape is off: a prompt is not HTML.
_ENV = BoundedSandbox(undefined=StrictUndefined, keep_trailing_newline=True)
# What a render can raise because of what the template says (not because of a bug).
_TEMPLATE_FAILURES = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError, AssertionError, RecursionError)
# Renders are CPU-bound and hold the GIL in turns: two threads are plenty, and a
# separate pool keeps them from queueing behind (or in front of) other blocking work.
_RENDERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="orchestrate-render")


_ROOTS = ("inputs", "steps", "secrets")  # read as root.name, the name written literally


@dataclass(frozen=True)
class Reference:
    """Something a template reads: ``inputs.x``, ``steps.s[.output|.outputs.f|.status]``,
    ``secrets.NAME`` or a bare name (a v0.2 step input or a step id)."""

    kind: str  # "input" | "step" | "secret" | "name"
    name: str
    field: str | None = None  # for steps: "output", "outputs", "status"
    subfield: str | None = None  # for steps.s.outputs.f: "f"


@dataclass(frozen=True)
class Analysis:
    references: tuple[Reference, ...]
    problems: tuple[tuple[str, int | None], ...]  # (message, template line)


def analyse(source: str, *, expression: bool = False) -> Analysis:
    """Parse a template (or a ``when`` expression) and list what it reads."""
    try:
        tree = _parse(source, expression)
        refs: list[Reference] = []
        problems: list[tuple[str, int | None]] = []
        _walk(tree, refs, problems, _assigned_names(tree))
    except TemplateSyntaxError as exc:
        return Analysis((), ((f"template syntax error: {exc.message}", exc.lineno),))
    except RecursionError:
        return Analysis((), (("template is nested too deeply", None),))
    return Analysis(tuple(dict.fromkeys(refs)), tuple(problems))


def _parse(source: str, expression: bool) -> nodes.Node:
    if expression:
        # Mirrors Environment.compile_expression's own parsing.
        from jinja2.parser import Parser

        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("unexpected text after the expression", parser.stream.current.lineno)
        return nodes.Template([nodes.Output([expr])], lineno=1)
    return _ENV.parse(source)


def _assigned_names(tree: nodes.Node) -> set[str]:
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names |= {m.name for m in tree.find_all(nodes.Macro)}
    if any(True for _ in tree.find_all(nodes.For)):
        names.add("loop")
    if any(True for _ in tree.find_all((nodes.Macro, nodes.CallBlock))):
        names |= {"caller", "varargs", "kwargs"}
    return names


def _walk(node: nodes.Node, refs: list[Reference], problems: list[tuple[str, int | None]], local: set[str]) -> None:
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        chain = _chain(node)
        if chain is not None and chain[0] in _ROOTS and chain[0] not in local:
            _record(chain, node.lineno, refs, problems)
            if isinstance(node, nodes.Getitem):
                _walk(node.arg, refs, problems, local)
            return
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            problems.append((f"access to '{node.attr}' is not allowed in templates", node.lineno))
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in local:
        if node.name in _ROOTS:
            problems.append((f"'{node.name}' must be followed by a literal name, as in {node.name}.name", node.lineno))
        elif node.name not in _ENV.globals:
            refs.append(Reference("name", node.name))
    for child in node.iter_child_nodes():
        _walk(child, refs, problems, local)


def _chain(node: nodes.Node) -> list[str | None] | None:
    """``steps.a.outputs.b`` -> ["steps", "a", "outputs", "b"]; None for non-literal parts."""
    parts: list[str | None] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, int):
            parts.append(None)  # an index into a value: stops the reference chain
        else:
            parts.append(None)
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    parts.append(node.name)
    parts.reverse()
    # Cut at the first non-literal part: what follows indexes into a value.
    if None in parts:
        parts = parts[: parts.index(None)]
    return parts


def _record(chain: list[str | None], line: int, refs: list[Reference], problems: list[tuple[str, int | None]]) -> None:
    root = chain[0]
    if len(chain) < 2:
        problems.append((f"'{root}' must be followed by a literal name, as in {root}.name", line))
        return
    name = str(chain[1])
    if root == "inputs":
        refs.append(Reference("input", name))
        return
    if root == "secrets":
        refs.append(Reference("secret", name))
        return
    field = chain[2] if len(chain) > 2 else None
    if field not in (None, "output", "outputs", "status"):
        problems.append((f"steps.{name}.{field}: a step has 'output', 'outputs' and 'status'", line))
        return
    subfield = chain[3] if field == "outputs" and len(chain) > 3 else None
    refs.append(Reference("step", name, field, subfield))


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


@lru_cache(maxsize=1024)
def _compiled_expression(source: str) -> Any:
    return _ENV.compile_expression(source, undefined_to_none=False)


def render(source: str, context: dict[str, Any]) -> str:
    """Render a prompt. Raises TemplateError naming what went wrong."""
    try:
        with budget():
            text: str = _compiled(source).render(context)
    except _TEMPLATE_FAILURES as exc:
        raise TemplateError(f"cannot render prompt: {exc}") from None
    except MemoryError:
        raise TemplateError("cannot render prompt: the machine ran out of memory") from None
    if len(text) > MAX_RENDERED:
        raise TemplateError("rendered prompt is larger than 1 MiB")
    return text


def evaluate(expression: str, context: dict[str, Any]) -> bool:
    """Evaluate a ``when`` condition."""
    return bool(evaluate_value(expression, context, "when"))


def evaluate_value(expression: str, context: dict[str, Any], what: str) -> Any:
    """Evaluate an expression (a ``when``, a ``for_each``) to its value."""
    try:
        with budget():
            return _compiled_expression(expression)(**context)
    except _TEMPLATE_FAILURES as exc:
        raise TemplateError(f"cannot evaluate {what}: {exc}") from None
    except MemoryError:
        raise TemplateError(f"cannot evaluate {what}: the machine ran out of memory") from None


async def in_render_thread(work: Callable[..., T], *args: Any) -> T:
    """Run template work (a render, a decision that evaluates ``when:``) in the render
    threads, so the event loop (the API, other steps) stays responsive meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_RENDERS, work, *args)


async def render_async(source: str, context: dict[str, Any]) -> str:
    return await in_render_thread(render, source, context)


async def evaluate_async(expression: str, context: dict[str, Any]) -> bool:
    return await in_render_thread(evaluate, expression, context)


def namespace(values: dict[str, Any]) -> SimpleNamespace:
    """Expose a mapping to templates by attribute only, so a field named ``items``
    or ``keys`` is the field, never a dict method."""
    return SimpleNamespace(**values)
