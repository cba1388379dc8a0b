"""The Jinja2 sandbox with resource bounds. Jinja's sandbox forbids attribute tricks
(``''.__class__``) but lets a template build a gigabyte string or spin for hours;
a prompt is written by one user and rendered on the service's machines, so here:

- strings and lists built by ``~``, ``+``, ``*``, ``%``, ``.format`` and the widening
  filters stay under ``MAX_TEXT``; integers under ``MAX_INT_BITS`` bits;
- every ``for`` loop of one render shares a budget of ``MAX_ITERATIONS`` items."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_format, do_indent
from jinja2.sandbox import SandboxedEnvironment

MAX_TEXT = 1024 * 1024
MAX_INT_BITS = 4096
MAX_ITERATIONS = 100_000
MAX_WIDTH = 10_000

_iterations: ContextVar[list[int]] = ContextVar("orchestrate_template_iterations")
_WIDTHS = re.compile(r"\d+")


@contextmanager
def budget() -> Iterator[None]:
    """Give one render (or one condition) its own loop budget."""
    token = _iterations.set([MAX_ITERATIONS])
    try:
        yield
    finally:
        _iterations.reset(token)


def _bounded_iter(items: Iterable[Any]) -> Iterator[Any]:
    left = _iterations.get([MAX_ITERATIONS])
    for item in items:
        left[0] -= 1
        if left[0] < 0:
            raise SecurityError(f"loops ran more than {MAX_ITERATIONS} times in one template")
        yield item


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


def _check(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"number larger than {MAX_INT_BITS} bits")
    if _size(value) > MAX_TEXT:
        raise SecurityError("value larger than 1 MiB")
    return value


def _check_widths(fmt: str) -> None:
    if any(int(n) > MAX_WIDTH for n in _WIDTHS.findall(fmt)):
        raise SecurityError(f"format width larger than {MAX_WIDTH}")


class _Generator(CodeGenerator):
    """String concatenation (``~``) goes through the environment, so it is bounded."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(SandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["bounded_iter"] = _bounded_iter
        self.filters["center"] = lambda value, width=80: do_center(value, _width(width))
        self.filters["indent"] = lambda s, width=4, first=False, blank=False: do_indent(s, _width(width) if isinstance(width, int) else width, first, blank)
        self.filters["format"] = self._format_filter

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every for-loop iterates through the render's shared budget.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name("bounded_iter", "load"), [loop.iter], [], None, None, lineno=loop.lineno)
        return tree

    def bounded_concat(self, parts: Iterable[Any]) -> str:
        return str(_check("".join(map(str, parts))))

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and left.bit_length() * right > MAX_INT_BITS:
                raise SecurityError(f"number larger than {MAX_INT_BITS} bits")
            return _check(operator.pow(left, right))
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if _size(seq) and isinstance(count, int) and _size(seq) * count > MAX_TEXT:
                    raise SecurityError("value larger than 1 MiB")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError(f"number larger than {MAX_INT_BITS} bits")
            return _check(operator.mul(left, right))
        if operator_name == "+":
            if _size(left) + _size(right) > MAX_TEXT:
                raise SecurityError("value larger than 1 MiB")
            return _check(operator.add(left, right))
        if isinstance(left, str):  # "%" formatting
            _check_widths(left)
        return _check(operator.mod(left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``'...'.format(...)``: the sandbox's own formatter, after a look at the widths."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_widths(str(value.__self__))
        return lambda *args, **kwargs: str(_check(wrapped(*args, **kwargs)))

    def _format_filter(self, value: str, *args: Any, **kwargs: Any) -> str:
        _check_widths(str(value))
        return str(_check(do_format(value, *args, **kwargs)))


def _width(width: Any) -> Any:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise SecurityError(f"width larger than {MAX_WIDTH}")
    return width
