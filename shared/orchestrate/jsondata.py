"""What counts as storable data: the one check every value from outside passes
(request bodies, run inputs, YAML scalars, rows read back from the database).

Legal JSON and YAML can hold things Postgres (jsonb, text) or Python's own encoders
cannot take: a lone UTF-16 surrogate (``"\\ud800"``), the NUL character, numbers
outside the float range (``1e400``, ``Infinity``, ``NaN``) and integers too long for
``int``/``str`` conversion. They are refused where they enter, naming the place, so
they never reach a 5xx deep inside a request."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

# Integers as long as this are past any float and can be converted without Python's
# 4,300-digit limit; longer ones are refused before conversion.
MAX_INT_DIGITS = 400
_FLOAT_MAX = sys.float_info.max


class DataError(ValueError):
    """A value that cannot be stored: ``path`` (``""`` for the whole value) and why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def scalar_problem(value: Any) -> str | None:
    """Why a single string or number cannot be stored, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "the NUL character (U+0000) is not allowed"
        if _has_surrogate(value):
            return "a lone UTF-16 surrogate (\\ud800-\\udfff) is not valid text"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "the number is not finite (NaN, or outside the range of a 64-bit float)"
    if isinstance(value, (int, float)) and abs(value) > _FLOAT_MAX:
        return "the number is outside the range of a 64-bit float"
    return None


def problem(value: Any) -> tuple[str, str] | None:
    """The first (path, reason) in ``value`` that cannot be stored, or None. Walks
    without recursion, so depth alone never raises."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            children = []
            for key, child in item.items():
                if not isinstance(key, str):
                    return path, f"object keys must be text, not {type(key).__name__}"
                reason = scalar_problem(key)
                if reason:
                    return path, f"a key: {reason}"
                children.append((_join(path, key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{path}[{i}]", child) for i, child in enumerate(item)]))
        elif isinstance(item, _Unstorable):
            return path, item.reason
        elif isinstance(item, (str, int, float, bool)) or item is None:
            reason = scalar_problem(item)
            if reason:
                return path, reason
        else:
            return path, f"a {type(item).__name__} is not JSON data"
    return None


def check(value: Any, prefix: str = "") -> None:
    """Raise DataError naming the first part of ``value`` that cannot be stored."""
    found = problem(value)
    if found:
        path, reason = found
        raise DataError(_concat(prefix, path), reason)


def loads(raw: str | bytes, prefix: str = "") -> Any:
    """Parse JSON that can be stored: json.JSONDecodeError for bad syntax, DataError
    naming the field for the rest (``NaN``, ``Infinity`` and over-long integers are
    kept as markers while parsing, so the walk can say where they were)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw  # UnicodeDecodeError is a ValueError too
    try:
        value = json.loads(text, parse_constant=_Unstorable.constant, parse_int=_bounded_int)
    except RecursionError:
        raise DataError(prefix, "nested too deeply") from None
    check(value, prefix)
    return value


class _Unstorable:
    """Stands for a number the parser met but that cannot be stored."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    @classmethod
    def constant(cls, name: str) -> _Unstorable:
        return cls(f"{name} is not a number JSON data can hold; numbers must be finite")


def _bounded_int(digits: str) -> int | _Unstorable:
    length = len(digits.lstrip("-"))
    if length > MAX_INT_DIGITS:
        return _Unstorable(f"an integer of {length} digits is outside the range of a 64-bit float")
    return int(digits)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _concat(prefix: str, path: str) -> str:
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"
