"""Safe YAML loading that remembers where every value came from.

PyYAML's safe composer builds a node graph in which an alias is a shared node, so
composing is cheap even for a "billion laughs" document; we then construct plain
Python values ourselves, counting nodes so alias expansion cannot blow up, refusing
duplicate keys, and recording each value's line and column by its path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problem, SpecError
from ..jsondata import scalar_problem

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]
Marks = dict[Path_, tuple[int, int]]


def read_text(path: Path) -> str:
    """Read a workflow file: at most 1 MiB of UTF-8."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([Problem("", "file not found")], name) from None
    except IsADirectoryError:
        raise SpecError([Problem("", "is a directory, not a workflow file")], name) from None
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read file: {exc.strerror}")], name) from None
    return decode(raw, name)


def decode(raw: bytes, file: str | None = None) -> str:
    if len(raw) > MAX_BYTES:
        raise SpecError([Problem("", f"file is larger than {MAX_BYTES // 1024} KiB; workflows must be at most 1 MiB")], file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Problem("", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", line, column)], file) from None
    return text.removeprefix("\ufeff")


def load(text: str, file: str | None = None) -> tuple[Any, Marks]:
    """Parse one YAML document into plain values and a map of path -> (line, column)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([Problem("", "document is larger than 1 MiB")], file)
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (the reader checks early)
        raise SpecError([_bad_character(text, exc)], file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise SpecError(
            [Problem("", f"invalid YAML: {message}", mark.line + 1 if mark else None, mark.column + 1 if mark else None)],
            file,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem("", f"invalid YAML: {exc}")], file) from None
    except RecursionError:
        raise SpecError([Problem("", f"document is nested deeper than {MAX_DEPTH} levels")], file) from None
    finally:
        if "loader" in locals():
            loader.dispose()
    if node is None:
        raise SpecError([Problem("", "the file is empty; a workflow needs `name` and `steps`", 1, 1)], file)
    builder = _Builder(loader, file)
    return builder.build(node, (), 0), builder.marks


def _bad_character(text: str, exc: yaml.reader.ReaderError) -> Problem:
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return Problem("", f"invalid YAML: character U+{code:04X} is not allowed; remove it or quote it as an escape", line, column)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str | None) -> None:
        self.loader = loader
        self.file = file
        self.marks: Marks = {}
        self.count = 0

    def _fail(self, node: yaml.Node, path: Path_, message: str) -> SpecError:
        from .problems import format_path

        mark = node.start_mark
        return SpecError([Problem(format_path(path), message, mark.line + 1, mark.column + 1)], self.file)

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(node, path, f"document expands to more than {MAX_NODES} values (alias/anchor expansion?)")
        if depth > MAX_DEPTH:
            raise self._fail(node, path, f"document is nested deeper than {MAX_DEPTH} levels")
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self._fail(key_node, path, "mapping keys must be plain strings")
                key = self._scalar(key_node, path, "a key: ")
                if not isinstance(key, (str, int, float)) or isinstance(key, bool):
                    raise self._fail(key_node, path, "mapping keys must be plain strings")
                key = str(key)
                if key in result:
                    raise self._fail(key_node, (*path, key), f"duplicate key '{key}'")
                self.marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self.build(value_node, (*path, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index), depth + 1) for index, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path_, what: str = "") -> Any:
        """A scalar as JSON data: text, a finite number, a boolean or null. Escapes
        (``"\0"``, ``"\ud800"``) and tags (``!!binary``, ``!!int``) can make values JSON
        or Postgres cannot hold: each is refused at its place. A timestamp is its text."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise self._fail(node, path, f"{what}invalid value: {exc.problem}") from None
        except ValueError:  # int() of a malformed `!!int`, or of more digits than Python converts
            kind = node.tag.rsplit(":", 1)[-1]
            raise self._fail(node, path, f"{what}not a valid {kind} (or too large): {node.value[:40]!r}") from None
        if isinstance(value, bytes):  # !!binary: accepted only as the text it encodes
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise self._fail(node, path, f"{what}a !!binary value must be UTF-8 text") from None
        if isinstance(value, (dt.date, dt.datetime)):  # an unquoted 2026-12-01: the text as written
            value = node.value
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise self._fail(node, path, f"{what}a {type(value).__name__} is not JSON data")
        reason = scalar_problem(value)
        if reason:
            raise self._fail(node, path, what + reason)
        return value
