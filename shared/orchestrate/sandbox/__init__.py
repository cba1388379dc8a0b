"""The Jinja2 sandbox with resource bounds. Jinja's sandbox forbids attribute tricks
(``''.__class__``) but lets a template build a gigabyte string or spin for hours;
a prompt is written by one user and rendered on the service's machines, so every
operation that makes a value, and the render's CPU time, go through a budget
(``budget.py``): sizes are checked *before* a value is built.

- operators (``~ + * % **``), literals, slices and the output are sized here;
- methods: an allow-list, each sized from its arguments (``calls.py``);
- filters: an allow-list, each sized the same way (``filters.py``); globals:
  ``range``, ``dict``, ``namespace``, ``cycler``, ``joiner`` (no ``lipsum``);
- every ``for`` loop of one render shares ``MAX_ITERATIONS`` items, and the render
  stops after ``MAX_CPU`` seconds of CPU (checked in every hook above)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import BlockReference, Context, LoopContext, Macro, Undefined
from jinja2.sandbox import SandboxedEnvironment, safe_range
from jinja2.utils import Cycler, Joiner, Namespace

from . import limits as b
from .limits import MAX_CPU, MAX_INT_BITS, MAX_ITERATIONS, MAX_TEXT, MAX_WIDTH, MAX_WORK, budget
from .calls import check_method
from .filters import FILTERS
from .text import bounded_list, is_structure, percent, str_format, stringify, to_json

__all__ = ["MAX_CPU", "MAX_INT_BITS", "MAX_ITERATIONS", "MAX_TEXT", "MAX_WIDTH", "MAX_WORK", "BoundedSandbox", "budget"]


def _bounded_iter(items: Iterable[Any]) -> Iterator[Any]:
    current = b.current()
    for item in items:
        current.iterations -= 1
        if current.iterations < 0:
            raise SecurityError(f"loops ran more than {MAX_ITERATIONS} times in one template")
        current.tick()
        yield item


def _range(*args: int) -> range:
    return safe_range(*args)  # lazy; at most 100,000 items (Jinja's sandbox bound)


def _dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    b.items(sum(len(a) for a in args) + len(kwargs), 64)
    return dict(*args, **kwargs)


def _namespace(*args: Any, **kwargs: Any) -> Namespace:
    b.items(sum(len(a) for a in args) + len(kwargs), 64)
    return Namespace(*args, **kwargs)


def _cycler(*items: Any) -> Cycler:
    b.items(len(items))
    return Cycler(*items)


def _joiner(sep: str = ", ") -> Joiner:
    b.items(1)
    return Joiner(sep)


_GLOBALS: dict[str, Callable[..., Any]] = {"range": _range, "dict": _dict, "namespace": _namespace, "cycler": _cycler, "joiner": _joiner}
_CALLABLE = (*_GLOBALS.values(), _bounded_iter)
# Jinja's own callables: macros (and `caller`), loops (`loop(...)`, `loop.cycle`),
# blocks, cyclers, joiners.
_RUNTIME = (Macro, LoopContext, BlockReference, Cycler, Joiner)


class _Generator(CodeGenerator):
    """Concatenation (``~``), literals and output go through the environment, so
    each is sized before it is built."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _literal(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        if getattr(node, "ctx", "load") != "load":  # an assignment target: `for a, b in ...`
            visit(node, frame)
            return
        self.write("environment.literal(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._literal(super().visit_List, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        self._literal(super().visit_Tuple, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._literal(super().visit_Dict, node, frame)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        # Top-level output is counted against the output bound as it streams out;
        # output kept in a buffer (a macro, a `{% set %}` block) is a value like any other.
        self.write("environment.emit(" if frame.buffer is None else "environment.finalize(")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write(")")


class BoundedSandbox(SandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(autoescape=False, finalize=stringify, **options)
        self.filters = dict(FILTERS)
        self.globals = dict(_GLOBALS)
        self.globals["bounded_iter"] = _bounded_iter

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every for-loop iterates through the render's shared budget.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name("bounded_iter", "load"), [loop.iter], [], None, None, lineno=loop.lineno)
        return tree

    # -- values the template builds ------------------------------------------------

    def bounded_concat(self, parts: Iterable[Any]) -> str:
        return "".join(_sized_join(stringify(p) for p in parts))

    def literal(self, value: Any) -> Any:
        b.items(len(value), 64 if isinstance(value, dict) else 0)
        return value

    def emit(self, value: Any) -> str:
        """A piece of top-level output. Structures become JSON within what is left of
        the output bound; the piece itself is counted in ``concat``."""
        if isinstance(value, str):
            return value
        if is_structure(value):
            return to_json(value, limit=b.current().output)
        b.tick()
        return str(value)  # a number, a boolean, None or one of Jinja's objects: short

    def concat(self, pieces: Iterable[str]) -> str:
        """Join output. A buffer (a list) is sized first; the render's output stream
        is counted piece by piece against ``MAX_TEXT`` and joined in batches."""
        current = b.current()
        if isinstance(pieces, list):
            b.text(sum(map(len, pieces)))
            return "".join(pieces)
        out: list[str] = []
        batch: list[str] = []
        for piece in pieces:
            current.output -= len(piece)
            if current.output < 0:
                raise SecurityError("rendered prompt is larger than 1 MiB")
            batch.append(piece)
            if len(batch) >= 256:
                out.append("".join(batch))
                batch.clear()
                current.clock()
        out.append("".join(batch))
        return "".join(out)

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        b.tick()
        if operator_name == "%":
            if isinstance(left, str):
                return percent(left, right)
            result = operator.mod(left, right)
        elif operator_name == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and left.bit_length() * right > MAX_INT_BITS:
                raise SecurityError(f"number larger than {MAX_INT_BITS} bits")
            result = operator.pow(left, right)
        elif operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    (b.text if isinstance(seq, str) else b.items)(len(seq) * max(count, 0))
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError(f"number larger than {MAX_INT_BITS} bits")
            result = operator.mul(left, right)
        else:  # "+"
            if isinstance(left, str) and isinstance(right, str):
                b.text(len(left) + len(right))
            elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
                b.items(len(left) + len(right))
            result = operator.add(left, right)
        b.check_int(result)
        return result

    def getitem(self, obj: Any, argument: Any) -> Any:
        b.tick()
        if isinstance(argument, slice) and isinstance(obj, (str, list, tuple)):
            length = len(range(*argument.indices(len(obj))))
            (b.text if isinstance(obj, str) else b.items)(length)
        return super().getitem(obj, argument)

    def getattr(self, obj: Any, attribute: str) -> Any:
        b.tick()
        return super().getattr(obj, attribute)

    # -- calls ---------------------------------------------------------------------

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``'...'.format(...)`` and ``format_map``: the bounded formatter."""
        if not isinstance(value, (MethodType, BuiltinMethodType)) or value.__name__ not in ("format", "format_map"):
            return None
        fmt = value.__self__
        if not isinstance(fmt, str):
            return None
        return _StrFormat(self, fmt, value.__name__ == "format_map")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Call what the allow-lists allow, after sizing it."""
        b.tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, (_StrFormat, Undefined)) or any(__obj is f for f in _CALLABLE):
            pass  # Undefined: Jinja raises, naming what is undefined
        elif isinstance(__obj, (MethodType, BuiltinMethodType)) and owner is not None and not isinstance(owner, _RUNTIME):
            computed = check_method(owner, __obj.__name__, args, kwargs)
            if computed is not None:
                return computed[0]
        elif isinstance(__obj, LoopContext):
            # A recursive loop's next level iterates through the loop budget too.
            args = (_bounded_iter(args[0]), *args[1:]) if args else args
        elif not isinstance(__obj, _RUNTIME) and not (isinstance(__obj, MethodType) and isinstance(owner, _RUNTIME)):
            raise SecurityError(f"{getattr(__obj, '__name__', type(__obj).__name__)} cannot be called in templates")
        return super().call(__context, __obj, *args, **kwargs)


class _StrFormat:
    def __init__(self, environment: BoundedSandbox, fmt: str, is_map: bool) -> None:
        self.environment, self.fmt, self.is_map = environment, fmt, is_map

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        if self.is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            return str_format(self.fmt, (), args[0], self.environment)
        return str_format(self.fmt, args, kwargs, self.environment)


def _sized_join(pieces: Iterable[str]) -> list[str]:
    parts = bounded_list(pieces)
    b.text(sum(map(len, parts)))
    return parts

