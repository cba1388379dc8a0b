"""Turn validation failures into located, actionable problems."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import Problem

PathT = Sequence[str | int]


def format_path(path: PathT) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(path: PathT, marks: dict[tuple[str | int, ...], tuple[int, int]]) -> tuple[int | None, int | None]:
    """The line and column of ``path``, or of its nearest located ancestor."""
    key = tuple(path)
    while True:
        if key in marks:
            return marks[key]
        if not key:
            return None, None
        key = key[:-1]


def suggest(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def from_validation_error(
    error: ValidationError, root: type[BaseModel], marks: dict[tuple[str | int, ...], tuple[int, int]]
) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        path = [part for part in item["loc"] if not _is_union_tag(part)]
        message = _message(item, root, path)
        line, column = locate(path, marks)
        problems.append(Problem(format_path(path), message, line, column))
    return dedupe(problems)


def _message(item: Any, root: type[BaseModel], path: list[str | int]) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        field = str(path[-1])
        model = _model_at(root, path[:-1])
        allowed = sorted(model.model_fields) if model else []
        hint = suggest(field, allowed) or (f"; allowed: {', '.join(allowed)}" if allowed else "")
        return f"unknown field '{field}'{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch" and "headers" in path:
        return "a header name is letters, digits and !#$%&'*+.^_`|~- (no spaces or colons)"
    if kind == "string_pattern_mismatch":
        return "must start with a letter and contain only letters, digits and '_' (it is used as a template name)"
    if kind == "model_type" or kind == "dict_type":
        return f"must be a mapping, not {_kind(item.get('input'))}"
    if kind == "list_type":
        return f"must be a list, not {_kind(item.get('input'))}"
    if kind == "value_error":  # our own validators: their message is the whole story
        return str(item["ctx"]["error"])
    return str(item["msg"])[0].lower() + str(item["msg"])[1:]


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the union member's name (e.g. "float", "constrained-float") to locs
    return isinstance(part, str) and (part in {"float", "int", "str", "bool", "none"} or part.startswith("constrained-"))


def _model_at(root: type[BaseModel], path: PathT) -> type[BaseModel] | None:
    """Walk field annotations along ``path`` to the model that owns its last part."""
    annotation: Any = root
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(part, int) or (typing.get_origin(annotation) is dict):
            args = typing.get_args(annotation)
            annotation = args[-1] if args else Any
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        for member in members:
            inner = _unwrap(member)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
        return _unwrap(members[0]) if members else annotation
    return annotation


def dedupe(problems: list[Problem]) -> list[Problem]:
    """Each (field, message) once, in first-seen order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for problem in problems:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            out.append(problem)
    return out
