"""Turning values into text without surprises: each function works out how long its
result will be and asks the budget before building it."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from string import Formatter
from types import SimpleNamespace
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from . import limits as b

# The longest text a number can format to (4096-bit integers have 1,234 digits,
# floats 309 before the point), before its width and precision.
_NUMBER = 1_500
_CONTROL = [chr(c) for c in range(32)]
MAX_DEPTH = 200  # JSON nesting (json.dumps itself recurses)
_SHORT_ESCAPES = "\n\r\t\b\f"


def is_structure(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, SimpleNamespace, Namespace))


def fields(value: Any) -> dict[str, Any]:
    """The attributes of a namespace as a mapping (for JSON)."""
    if isinstance(value, Namespace):
        attrs: dict[str, Any] = object.__getattribute__(value, "_Namespace__attrs")
        return attrs
    return dict(vars(value))


def stringify(value: Any) -> str:
    """How a value reads in a prompt: text as is, arrays and objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Undefined):
        return str(value)  # strict: raises, naming what is undefined
    if is_structure(value):
        text = to_json(value, limit=min(b.MAX_TEXT, b.current().work))
    else:
        text = str(value)  # numbers, booleans, None and Jinja's own objects: short
    b.text(len(text))
    return text


def to_json(value: Any, *, indent: int | None = None, sort_keys: bool = False, limit: int = b.MAX_TEXT) -> str:
    """``json.dumps``, refused when its result would be longer than ``limit``."""
    size = json_size(value, indent or 0, limit)
    if size > limit:
        raise SecurityError(f"value larger than {limit:,} characters as JSON")
    return json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (SimpleNamespace, Namespace)):
        return fields(value)
    return str(value)


def json_size(value: Any, indent: int, limit: int) -> int:
    """An upper bound of the length of ``value`` as JSON; stops early past ``limit``.
    Walks with a stack of iterators: no recursion, and memory in the depth only."""
    total, seen = 0, 0
    stack: list[tuple[Iterator[Any], int]] = [(iter((value,)), 0)]
    while stack and total <= limit:
        items, depth = stack[-1]
        item = next(items, _END)
        if item is _END:
            stack.pop()
            continue
        seen += 1
        if not seen & 1023:
            b.current().clock()
        if depth > MAX_DEPTH:  # also ends a namespace that contains itself
            raise SecurityError(f"value nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, str):
            total += escaped_length(item) + 2
        elif item is None or isinstance(item, (bool, float)):
            total += 24
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, (list, tuple)):
            total += 2 + depth * indent + len(item) * (3 + (depth + 1) * indent)
            stack.append((iter(item), depth + 1))
        elif isinstance(item, (dict, SimpleNamespace, Namespace)):
            mapping = item if isinstance(item, dict) else fields(item)
            total += 2 + depth * indent + len(mapping) * (5 + (depth + 1) * indent)
            stack.append((itertools.chain.from_iterable((k if isinstance(k, str) else str(k), v) for k, v in mapping.items()), depth + 1))
        else:
            total += escaped_length(str(item)) + 2
    return total


_END = object()


def escaped_length(text: str) -> int:
    """The length of ``text`` inside a JSON string (``ensure_ascii=False``)."""
    extra = text.count('"') + text.count("\\")
    if not text.isprintable():
        for c in _CONTROL:
            extra += text.count(c) * (1 if c in _SHORT_ESCAPES else 5)
    return len(text) + extra


def repr_length(text: str, conversion: str = "r") -> int:
    """An upper bound of ``len(repr(text))`` (or of ``ascii(text)``)."""
    plain = text.isascii() if conversion == "a" else text.isprintable()
    return 2 * len(text) + 2 if plain else 10 * len(text) + 2  # '\U0001f600


def join(separator: str, parts: Iterable[Any]) -> str:
    """``separator.join``, sized first; non-text parts read as ``stringify`` says."""
    pieces = [stringify(p) for p in bounded_list(parts)]
    b.text(sum(map(len, pieces)) + len(separator) * max(len(pieces) - 1, 0))
    return separator.join(pieces)


def bounded_list(values: Iterable[Any]) -> list[Any]:
    """Materialise an iterable (a generator of ``map`` or ``select``, a range) item by
    item, within the budget; an existing list or tuple costs nothing."""
    if isinstance(values, list):
        return values
    if isinstance(values, (tuple, str, dict)):
        b.items(len(values))
        return list(values)
    # A generator's items may be new objects too (a range's numbers).
    out: list[Any] = []
    budget = b.current()
    for value in values:
        out.append(value)
        if not len(out) & 255:
            b.items(256, _ITEM)
        else:
            budget.tick()
    b.items(len(out) & 255, _ITEM)
    return out


_ITEM = 32  # an integer's size


# printf-style: %(key)flags width .precision length conversion
_PERCENT = re.compile(r"%(?:\((?P<key>[^)]*)\))?[-+ #0]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?(?P<conversion>.?)", re.S)


def percent(fmt: str, values: Any) -> str:
    """``fmt % values``, sized first: widths and precisions (``*`` ones too) are
    bounded, and the whole result is charged before Python builds it."""
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    used, total, index = 0, len(fmt), fmt.find("%")
    converted = list(positional)
    keyed: dict[Any, Any] = {}
    while index != -1:
        match = _PERCENT.match(fmt, index)
        assert match is not None  # every part of the pattern is optional
        conversion = match["conversion"]
        if conversion == "%":
            index = fmt.find("%", match.end())
            continue
        if conversion not in "diouxXeEfFgGcrsa" or not conversion:
            raise ValueError(f"unsupported format character {conversion!r} at index {index}")

        def take() -> tuple[int, Any]:
            nonlocal used
            if used >= len(positional):
                raise TypeError("not enough arguments for format string")
            used += 1
            return used - 1, positional[used - 1]

        size = [0, 0]
        for n, part in enumerate(("width", "precision")):
            spec = match[part]
            if spec == "*":
                size[n] = abs(b.width(take()[1], f"format {part}"))
            elif spec:
                size[n] = b.width(int(spec), f"format {part}")
        if match["key"] is not None:
            if mapping is None:
                raise TypeError("format requires a mapping")
            value = mapping[match["key"]]
            value = keyed.setdefault(match["key"], stringify(value) if is_structure(value) else value)
        else:
            position, value = take()
            if is_structure(value):
                value = converted[position] = stringify(value)
        total += max(size[0], _field_length(value, conversion, size[1], match["precision"] is not None))
        index = fmt.find("%", match.end())
    b.text(total)
    if mapping is not None and keyed:
        return fmt % {**mapping, **keyed}
    return fmt % (tuple(converted) if isinstance(values, tuple) else converted[0])


def _field_length(value: Any, conversion: str, precision: int, has_precision: bool) -> int:
    if conversion in "sra":
        text = value if isinstance(value, str) else str(value)
        length = len(text) if conversion == "s" else repr_length(text, conversion)
        return min(length, precision) if has_precision else length
    if conversion == "c":
        return 1
    return _NUMBER + precision


# format spec mini-language: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[bcdeEfFgGnosxX%]?", re.S)


class BoundedFormatter(Formatter):
    """``str.format`` for templates: fields are looked up through the sandbox and each
    field's size is charged before it is formatted (nested ``{:{w}}`` widths too)."""

    def __init__(self, environment: Any) -> None:
        self._env = environment

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        from _string import formatter_field_name_split  # type: ignore[import-not-found]

        first, rest = formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = self._env.getattr(obj, key) if is_attr else self._env.getitem(obj, key)
        return obj, first

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if is_structure(value):
            value = stringify(value)
        if conversion in ("r", "a"):
            b.text(repr_length(value, conversion) if isinstance(value, str) else _NUMBER)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        match = _SPEC.fullmatch(format_spec)
        if match is None:
            raise ValueError(f"invalid format specification {format_spec!r}")
        width = b.width(int(match["width"] or 0), "format width")
        precision = b.width(int(match["precision"] or 0), "format precision")
        if is_structure(value):
            value = stringify(value)
        if isinstance(value, str):
            length = min(len(value), precision) if match["precision"] else len(value)
        elif isinstance(value, (int, float)):
            length = (_NUMBER + precision) * 4 // 3  # digit grouping adds a third
        else:
            value = str(value)
            length = len(value)
        b.text(max(width, length))
        return format(value, format_spec)


def str_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], environment: Any) -> str:
    b.text(len(fmt))  # the literal text between the fields
    return BoundedFormatter(environment).vformat(fmt, args, kwargs)
