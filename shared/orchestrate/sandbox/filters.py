"""The filters a template may use, each sized before it builds its result.

Available: abs, attr, batch, capitalize, center, count, d, default, dictsort, e,
escape, filesizeformat, first, float, forceescape, format, groupby, indent, int,
items, join, last, length, list, lower, map, max, min, random, reject, rejectattr,
replace, reverse, round, safe, select, selectattr, slice, sort, string, striptags,
sum, title, tojson, trim, truncate, unique, upper, wordcount, wordwrap. Not
available (HTML helpers with no use in a prompt, or unbounded): pprint, urlencode,
urlize, xmlattr. Jinja's tests are all available; they only compare."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import markupsafe
from jinja2 import filters as jf
from jinja2.exceptions import SecurityError
from jinja2.utils import pass_environment

from . import limits as b
from .calls import line_count, replaced_length
from .text import bounded_list, percent, stringify, to_json
from .text import join as bounded_join

_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")
_WORD_STARTS = " \t\n-([{<"

def center(value: Any, width: int = 80) -> str:
    s = stringify(value)
    b.text(max(len(s), b.width(width)))
    return s.center(width)


def indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    s = stringify(s)
    unit = width if isinstance(width, str) else " " * b.width(width)
    lines = line_count(s)
    size = len(s) + 1 + lines * (len(unit) + 1)
    b.items(lines, b.OBJECT)  # the lines, split
    b.text(size)  # the joined lines, then the result
    b.text(size)
    return jf.do_indent(s, unit, first, blank)


def _same_size(method: Callable[[str], str], factor: int = 1) -> Callable[[Any], str]:
    def apply(value: Any) -> str:
        s = stringify(value)
        b.text(factor * len(s) if not s.isascii() else len(s))
        return method(s)

    apply.__name__ = method.__name__
    return apply


def urlencode(value: Any) -> str:
    """Percent-encode text for a URL (an http step's query): at most 9 bytes per character."""
    s = stringify(value)
    b.text(9 * len(s))
    return jf.do_urlencode(s)


def trim(value: Any, chars: str | None = None) -> str:
    s = stringify(value)
    b.text(len(s))
    return s.strip(chars)


def title(value: Any) -> str:
    s = stringify(value)
    words = sum(s.count(c) for c in _WORD_STARTS) + 1
    b.items(2 * words, b.OBJECT)  # Jinja titles word by word, then joins
    b.text(3 * len(s) if not s.isascii() else len(s))
    return jf.do_title(s)


def striptags(value: Any) -> str:
    s = stringify(value)
    b.items(s.count("<"), b.OBJECT)  # the pieces between tags
    b.text(len(s))
    b.text(len(s))
    return str(markupsafe.Markup(_SPACES.sub(" ", _without_tags(s)).strip()).unescape())


def _without_tags(s: str) -> str:
    """Drop ``<!-- comments -->`` and ``<tags>`` in one linear pass (a regex, or
    markupsafe's loop, takes quadratic time on ``'<' * n`` or ``'<a>' * n``)."""
    pieces: list[str] = []
    at, comments_end, tags_end = 0, True, True
    while (start := s.find("<", at)) != -1:
        pieces.append(s[at:start])
        end = s.find("-->", start + 4) if comments_end and s.startswith("<!--", start) else -1
        if end != -1:
            at = end + 3
            continue
        comments_end = comments_end and not s.startswith("<!--", start)  # none closes later either
        end = s.find(">", start + 1) if tags_end else -1
        if end == -1:
            tags_end, at = False, start
            break
        at = end + 1
    pieces.append(s[at:])
    return "".join(pieces)


def wordcount(value: Any) -> int:
    return sum(1 for _ in _WORD.finditer(stringify(value)))


def escape(value: Any) -> str:
    s = stringify(value)
    b.text(5 * len(s))  # '"' -> '&#34;'; then a plain copy
    b.text(5 * len(s))
    return str(markupsafe.escape(s))


def safe(value: Any) -> Any:
    return value  # prompts are not HTML: nothing is escaped in the first place


def replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    s, old, new = stringify(value), stringify(old), stringify(new)
    b.text(replaced_length(s, old, new, -1 if count is None else count))
    return s.replace(old, new, -1 if count is None else count)


@pass_environment
def truncate(env: Any, s: Any, length: int = 255, killwords: bool = False, end: str = "...", leeway: int | None = None) -> str:
    s = stringify(s)
    b.text(min(len(s), length) + len(stringify(end)))
    return jf.do_truncate(env, s, length, killwords, end, leeway)


@pass_environment
def wordwrap(env: Any, s: Any, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:
    s = stringify(s)
    joint = env.newline_sequence if wrapstring is None else stringify(wrapstring)
    chunks = sum(s.count(c) for c in " \t-") + line_count(s)
    lines = len(s) // max(b.width(width), 1) + line_count(s) + chunks
    b.items(2 * chunks + lines, b.OBJECT)  # textwrap's chunks and lines
    b.text(len(s) + lines * len(joint))
    return jf.do_wordwrap(env, s, width, break_long_words, joint, break_on_hyphens)


def format_(value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise TypeError("format takes positional or keyword arguments, not both")
    return percent(stringify(value), kwargs or args)


def string(value: Any) -> str:
    return stringify(value)


@pass_environment
def join(env: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    if attribute is not None:
        value = map(jf.make_attrgetter(env, attribute), value)
    return bounded_join(stringify(d), value)


def list_(value: Iterable[Any]) -> list[Any]:
    seq = bounded_list(value)
    if seq is value:
        b.items(len(seq))
        return list(seq)
    return seq


def tojson(value: Any, indent: int | None = None) -> str:
    if indent is not None:
        b.width(indent, "indent")
    text = to_json(value, indent=indent, sort_keys=True, limit=min(b.MAX_TEXT, b.current().work))
    b.text(len(text))
    unsafe = sum(text.count(c) for c in "<>&'")
    b.text(len(text) + 5 * unsafe)  # as Jinja: HTML-safe escapes
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    size = b.width(linecount, "batch size") if fill_with is not None else int(linecount)
    chunk: list[Any] = []
    for item in value:
        b.tick()
        if len(chunk) == size:
            b.items(len(chunk))
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        if fill_with is not None and len(chunk) < size:
            chunk += [fill_with] * (size - len(chunk))
        b.items(len(chunk))
        yield chunk


def slice_(value: Iterable[Any], slices: int, fill_with: Any = None) -> list[list[Any]]:
    seq = bounded_list(value)
    b.items(b.width(slices, "slice count"), 8 + b.OBJECT)
    b.items(len(seq) + (slices if fill_with is not None else 0))
    return list(jf.sync_do_slice(seq, slices, fill_with))


def _materialise(f: Callable[..., Any], each: int = 0) -> Callable[..., Any]:
    """A Jinja filter that builds a list of (a copy of) its input: materialise the
    input within the budget and charge the copy first."""

    @pass_environment
    def apply(env: Any, value: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        seq = bounded_list(value)
        b.items(len(seq), each)
        return f(env, seq, *args, **kwargs)

    apply.__name__ = f.__name__
    return apply


@pass_environment
def sum_(env: Any, iterable: Iterable[Any], attribute: str | int | None = None, start: Any = 0) -> Any:
    seq = bounded_list(iterable if attribute is None else map(jf.make_attrgetter(env, attribute), iterable))
    if isinstance(start, (list, tuple)):
        # Summing lists concatenates them: sized first, and in linear time (``sum``
        # copies the growing list at each step, quadratic and uninterruptible).
        b.items(sum(len(x) for x in seq if isinstance(x, (list, tuple))) + len(start))
        out = list(start)
        for part in seq:
            b.tick()
            if not isinstance(part, type(start)):
                raise TypeError(f"can only concatenate {type(start).__name__} (not {type(part).__name__})")
            out += part
        return tuple(out) if isinstance(start, tuple) else out
    result = sum(seq, start)
    b.check_int(result)
    return result


def int_(value: Any, default: int = 0, base: int = 10) -> int:
    if isinstance(value, str) and len(value) > b.MAX_INT_BITS + 100:
        raise SecurityError(f"number larger than {b.MAX_INT_BITS} bits")
    result = jf.do_int(value, default, base)
    b.check_int(result)
    return result


def reverse(value: Any) -> Any:
    if isinstance(value, str):
        b.text(len(value))
        return value[::-1]
    seq = bounded_list(value)
    return reversed(seq)


def dictsort(value: Any, *args: Any, **kwargs: Any) -> Any:
    b.items(len(value), 8 + b.OBJECT)  # a list of (key, value) pairs
    return jf.do_dictsort(value, *args, **kwargs)


def _plain(f: Callable[..., Any]) -> Callable[..., Any]:
    """A Jinja filter that only reads its input or returns part of it."""
    return f


FILTERS: dict[str, Callable[..., Any]] = {
    "abs": _plain(abs),
    "attr": _plain(jf.do_attr),
    "batch": batch,
    "capitalize": _same_size(str.capitalize, 3),
    "center": center,
    "count": _plain(len),
    "d": _plain(jf.do_default),
    "default": _plain(jf.do_default),
    "dictsort": dictsort,
    "e": escape,
    "escape": escape,
    "filesizeformat": _plain(jf.do_filesizeformat),
    "first": _plain(jf.do_first),
    "float": _plain(jf.do_float),
    "forceescape": escape,
    "format": format_,
    "groupby": _materialise(jf.sync_do_groupby, 2 * b.OBJECT),
    "indent": indent,
    "int": int_,
    "items": _plain(jf.do_items),
    "join": join,
    "last": _plain(jf.do_last),
    "length": _plain(len),
    "list": list_,
    "lower": _same_size(str.lower, 3),
    "map": _plain(jf.do_map),
    "max": _plain(jf.do_max),
    "min": _plain(jf.do_min),
    "random": _plain(jf.do_random),
    "reject": _plain(jf.do_reject),
    "rejectattr": _plain(jf.do_rejectattr),
    "replace": replace,
    "reverse": reverse,
    "round": _plain(jf.do_round),
    "safe": safe,
    "select": _plain(jf.do_select),
    "selectattr": _plain(jf.do_selectattr),
    "slice": slice_,
    "sort": _materialise(jf.do_sort),
    "string": string,
    "striptags": striptags,
    "sum": sum_,
    "title": title,
    "tojson": tojson,
    "trim": trim,
    "truncate": truncate,
    "unique": _materialise(jf.sync_do_unique, 2 * b.OBJECT),
    "upper": _same_size(str.upper, 3),
    "urlencode": urlencode,
    "wordcount": wordcount,
    "wordwrap": wordwrap,
}
