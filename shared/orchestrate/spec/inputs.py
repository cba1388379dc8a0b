"""Run inputs: checked against the workflow's declared inputs, defaults applied."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import jsondata
from ..errors import InputError
from ..jsondata import problem, scalar_problem
from .model import InputSpec, OutputSpec, ValueType, Workflow
from .problems import suggest

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def resolve_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run's inputs (given values plus defaults) or raise InputError listing every problem."""
    problems = []
    values: dict[str, Any] = {}
    for name, value in given.items():
        if scalar_problem(name):  # never echo a name that cannot be printed or stored
            problems.append(f"input {name!r}: not a valid input name ({scalar_problem(name)})")
            continue
        spec = workflow.inputs.get(name)
        if spec is None:
            known = sorted(workflow.inputs)
            hint = suggest(name, known) or (f"; declared inputs: {', '.join(known)}" if known else "; this workflow declares no inputs")
            problems.append(f"input '{name}': unknown input{hint}")
            continue
        found = problem(value)
        if found:
            where = f" at {found[0]}" if found[0] else ""
            problems.append(f"input '{name}'{where}: {found[1]}")
            continue
        if not matches(spec.type, value):
            problems.append(f"input '{name}': expected {spec.type}, got {describe(value)}")
            continue
        values[name] = value
    for name, spec in workflow.inputs.items():
        if name in values or name in given:
            continue
        if spec.required:
            about = f" ({spec.description})" if spec.description else ""
            problems.append(f"input '{name}': required but not given{about}")
        else:
            values[name] = spec.default
    if problems:
        raise InputError(problems)
    return values


def parse_pairs(workflow: Workflow, pairs: Iterable[str]) -> dict[str, Any]:
    """``name=value`` strings from the command line, converted to each input's declared type."""
    return parse_pairs_as(pairs, lambda name: workflow.inputs.get(name, InputSpec()).type)


def parse_pairs_as(pairs: Iterable[str], kind_of: Callable[[str], ValueType]) -> dict[str, Any]:
    """``name=value`` strings, each converted to the type ``kind_of(name)`` says."""
    problems = []
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(f"--input {pair!r}: expected name=value")
            continue
        try:
            values[name] = coerce(kind_of(name), raw)
        except ValueError as exc:
            problems.append(f"input '{name}': {exc}")
    if problems:
        raise InputError(problems)
    return values


def coerce(kind: ValueType, raw: str) -> Any:
    if kind == "string":
        reason = scalar_problem(raw)  # argv holds a byte that is not UTF-8 as a lone surrogate
        if reason:
            raise ValueError(reason)
        return raw
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"expected boolean (true/false), got {raw!r}")
    try:
        value = jsondata.loads(raw)
    except json.JSONDecodeError:
        if kind == "array":
            return [part.strip() for part in raw.split(",") if part.strip()]
        raise ValueError(f"expected {kind}, got {raw[:40]!r}") from None
    except jsondata.DataError as exc:
        raise ValueError(f"expected {kind}: {exc}") from None
    if not matches(kind, value):
        raise ValueError(f"expected {kind}, got {raw!r}")
    return value


def matches(kind: str, value: Any) -> bool:
    if isinstance(value, bool) and kind != "boolean":
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _PY_TYPES[kind])


def describe(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}.get(
        type(value), type(value).__name__
    ) + (f" {value!r}" if isinstance(value, (str, int, float)) and len(repr(value)) < 40 else "")


def field_problems(fields: Iterable[OutputSpec], given: Any, what: str = "field") -> list[str]:
    """Problems of an answer against declared fields (an approval's, a step's outputs),
    each naming the field: missing, of the wrong type, or unknown."""
    if not isinstance(given, dict):
        return [f"expected an object of {what}s, got {describe(given)}"]
    declared = {f.name: f for f in fields}
    problems = [f"{what} '{name}': unknown{suggest(name, declared) or ''}" for name in given if name not in declared]
    for name, spec in declared.items():
        if name not in given:
            problems.append(f"{what} '{name}': required but not given")
        elif not matches(spec.type, given[name]) or (spec.type == "array" and not all(isinstance(v, str) for v in given[name])):
            kind = "an array of strings" if spec.type == "array" else spec.type
            problems.append(f"{what} '{name}': expected {kind}, got {describe(given[name])}")
    return problems
