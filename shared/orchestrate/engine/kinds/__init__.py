"""What each step kind does when its step is claimed: one executor per kind.

An executor runs outside any transaction and returns the outcome to record; it never
raises for a failure it can name (the engine turns anything else into an outcome too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from . import approval, prompt, wait, workflow

if TYPE_CHECKING:
    from ...spec import Plan
    from ..core import Engine
    from ..store import Claim, Outcome

Executor = Callable[["Engine", "Plan", "Claim"], Awaitable["Outcome"]]

EXECUTORS: dict[str, Executor] = {"prompt": prompt.execute, "approval": approval.execute, "wait": wait.execute, "workflow": workflow.execute}

__all__ = ["EXECUTORS", "Executor"]
