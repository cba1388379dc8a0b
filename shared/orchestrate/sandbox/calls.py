"""Which methods a template may call, and what each would allocate.

Only the methods listed here can be called; each is sized before it runs from its
arguments (``'x'.center(10**8)`` is refused, not built)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2.exceptions import SecurityError

from . import limits as b
from .text import join

# Methods that read a string and return a number, a boolean or a short tuple.
_QUERIES = frozenset(
    "count endswith find index isalnum isalpha isascii isdecimal isdigit isidentifier islower isnumeric "
    "isprintable isspace istitle isupper rfind rindex startswith".split()
)
# Methods whose result is no longer than the string (case changes: up to 3x, 'ß' -> 'SS').
_SHRINKING = frozenset("lstrip partition removeprefix removesuffix rpartition rstrip strip".split())
_CASE = frozenset("capitalize casefold lower swapcase title upper".split())
_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"

Check = Callable[[str, tuple[Any, ...], dict[str, Any]], tuple[Any, ...] | None]


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _pad(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    b.text(max(len(s), b.width(_arg(args, kwargs, 0, "width", 0))))


def _expandtabs(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    size = b.width(_arg(args, kwargs, 0, "tabsize", 8), "tab size")
    b.text(len(s) + s.count("\t") * max(size, 0))


def _replace(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    old, new, count = _arg(args, kwargs, 0, "old", None), _arg(args, kwargs, 1, "new", None), _arg(args, kwargs, 2, "count", -1)
    if not isinstance(old, str) or not isinstance(new, str) or not isinstance(count, int):
        raise TypeError("replace() takes two strings and a count")
    b.text(replaced_length(s, old, new, count))


def replaced_length(s: str, old: str, new: str, count: int = -1) -> int:
    hits = s.count(old) if old else len(s) + 1
    if count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(len(new) - len(old), 0)


def _split(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sep = _arg(args, kwargs, 0, "sep", None)
    parts = s.count(sep) + 1 if isinstance(sep, str) and sep else len(s) // 2 + 1
    b.items(parts, b.OBJECT)
    b.text(len(s))


def line_count(s: str) -> int:
    """An upper bound of ``len(s.splitlines())`` without splitting."""
    return sum(s.count(c) for c in _LINE_BREAKS) + 1


def _splitlines(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    b.items(line_count(s), b.OBJECT)
    b.text(len(s))


def _join(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) != 1 or kwargs:
        raise TypeError("join() takes exactly one argument")
    return (join(s, args[0]),)


def _same(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    b.text(len(s))


def _case(s: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    b.text(len(s) if s.isascii() else 3 * len(s))


STR_METHODS: dict[str, Check] = {
    **{name: (lambda s, a, k: None) for name in _QUERIES},
    **{name: _same for name in _SHRINKING},
    **{name: _case for name in _CASE},
    "center": _pad,
    "ljust": _pad,
    "rjust": _pad,
    "zfill": _pad,
    "expandtabs": _expandtabs,
    "replace": _replace,
    "split": _split,
    "rsplit": _split,
    "splitlines": _splitlines,
    "join": _join,
}
# Read-only methods of lists, tuples and mappings (iterating or looking up).
CONTAINER_METHODS = {list: {"count", "index"}, tuple: {"count", "index"}, dict: {"get", "items", "keys", "values"}}


def check_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """Refuse a method not listed, or size a listed one. Returns the result when the
    check had to compute it (``join`` materialises its argument), else None."""
    if isinstance(owner, str):
        check = STR_METHODS.get(name)
        if check is None:
            raise SecurityError(f"str.{name}() is not available in templates")
        return check(owner, args, kwargs)
    for kind, names in CONTAINER_METHODS.items():
        if isinstance(owner, kind):
            if name not in names:
                raise SecurityError(f"{kind.__name__}.{name}() is not available in templates")
            return None
    raise SecurityError(f"{type(owner).__name__}.{name}() is not available in templates")
