"""`on_error`: what a step's failure for good becomes (docs: the language reference)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..spec.model import Step
from .records import ErrorInfo, Usage
from .store import Failure, Success


def apply(step: Step, failure: Failure, *, item: bool = False) -> Failure | Success:
    """A failure as the step's `on_error` says: as it is (`fail`), one the run goes on
    after (`continue`), or the step's default answer, recording the error. A for_each
    item's failure carries its step's `on_error` for when it fails the step."""
    if step.on_error == "fail":
        return failure
    if step.on_error == "continue":
        return dataclasses.replace(failure, go_on=True)
    default = answer(step, step.on_error.default, failure.error)
    return dataclasses.replace(failure, default=default) if item else default


def answer(step: Step, value: Any, recovered: ErrorInfo | None = None) -> Success:
    """A step's answer made of a value (an `on_error` default, an approval's fields):
    its `outputs` when it declares fields (an object), its text otherwise."""
    text = value if isinstance(value, str) else json.dumps(value)
    declares = bool(step.outputs) or (step.approval is not None and bool(step.approval.fields))
    outputs = value if isinstance(value, dict) and declares else None
    return Success("", text, outputs, "", Usage(), 0, recovered=recovered)
