"""One render's budget: what it may allocate, how long it may compute.

Every operation that makes a value asks the budget first, with the size the value
would have, so an oversized string is refused before it exists rather than after.
Sizes are estimates in bytes: a string costs its characters plus an object header,
a list its item pointers plus a header. The work budget is cumulative (freed values
are not credited back), which keeps the accounting O(1) and errs on the safe side."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from jinja2.exceptions import SecurityError

MAX_TEXT = 1024 * 1024  # characters (or items) in one value, and in a rendered prompt
MAX_WORK = 2 * 1024 * 1024  # estimated bytes of values one render creates
MAX_CPU = 1.0  # seconds of CPU one render may use
MAX_INT_BITS = 4096
MAX_ITERATIONS = 100_000  # items of every for-loop of one render together
MAX_WIDTH = 10_000  # a width, fill, tab size or precision
OBJECT = 64  # bytes of a small object's header (with the collector's) and its pointer


@dataclass
class Budget:
    deadline: float  # time.thread_time() past which the render stops
    iterations: int = MAX_ITERATIONS
    work: int = MAX_WORK
    output: int = MAX_TEXT
    ops: int = 0

    def tick(self) -> None:
        """A cheap operation ran; read the CPU clock every few of them."""
        self.ops += 1
        if not self.ops & 15:
            self.clock()

    def clock(self) -> None:
        if time.thread_time() > self.deadline:
            raise SecurityError(f"the template used more than {MAX_CPU:g} s of CPU")

    def spend(self, cost: int) -> None:
        self.tick()
        self.work -= cost
        if self.work < 0:
            raise SecurityError(f"the template built more than {MAX_WORK // (1024 * 1024)} MiB of values")


_current: ContextVar[Budget] = ContextVar("orchestrate_template_budget")


@contextmanager
def budget() -> Iterator[Budget]:
    """Give one render (or one condition) its own budget, in the thread that renders."""
    token = _current.set(Budget(time.thread_time() + MAX_CPU))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current() -> Budget:
    try:
        return _current.get()
    except LookupError:
        # Jinja folds constants at compile time; without a budget it must not
        # allocate, and falls back to evaluating the expression at render time.
        raise SecurityError("template code ran outside a render") from None


def tick() -> None:
    budget_ = _current.get(None)
    if budget_ is not None:
        budget_.tick()


def text(chars: int) -> None:
    """A string of ``chars`` characters is about to be made."""
    if chars > MAX_TEXT:
        raise SecurityError(f"value larger than 1 MiB ({chars:,} characters)")
    current().spend(chars + OBJECT)


def items(count: int, each: int = 0) -> None:
    """A list (or tuple, dict) of ``count`` items is about to be made; ``each`` is the
    cost of a new object per item, when the items are new too."""
    if count > MAX_TEXT:
        raise SecurityError(f"value larger than 1 MiB ({count:,} items)")
    current().spend(OBJECT + count * (8 + each))


def width(value: object, what: str = "width") -> int:
    """A width, fill or precision argument: an integer no larger than MAX_WIDTH."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    if abs(value) > MAX_WIDTH:  # a negative `*` width pads too (to the left)
        raise SecurityError(f"{what} larger than {MAX_WIDTH:,}")
    return value


def check_int(value: object) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"number larger than {MAX_INT_BITS} bits")
