"""The Store interface the engine talks to. Implementations: ``MemoryStore`` here,
the Postgres store in ``orchestrate.db``. Each method is one atomic change that also
appends its events, so the event log always matches the state.

The protocol is counter-based (docs/protocol.md): a completion touches only the
finished step, its direct dependents and the run, and releases queued steps while the
run has fewer than its cap in flight; held steps stay queued in the store, not in the
queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .decide import Control, StepNode
from .records import ErrorInfo, Event, RunState, RunStatus, StepStatus, Usage


@dataclass(frozen=True)
class Claim:
    """A step claimed for execution: the run (with the claimed step and the steps it
    reads: its dependencies, or a conversation's earlier turns) and the attempt."""

    run: RunState
    step_id: str
    attempt: int
    tries: int = 0  # attempts since the step was last reset (a run retry); 0: same as attempt

    @property
    def attempts_used(self) -> int:
        return self.tries or self.attempt

    @property
    def woken(self) -> bool:
        """The step parked earlier and this claim ends its wait (see ``Park``)."""
        return self.run.steps[self.step_id].woken


@dataclass(frozen=True)
class Success:
    prompt: str | None  # None: keep the step's (a resolved wait's, recorded when it parked)
    output: str
    outputs: dict[str, Any] | list[Any] | None
    model: str
    usage: Usage
    latency_ms: int
    recovered: ErrorInfo | None = None  # `on_error: {default}`: the error the default stands in for


@dataclass(frozen=True)
class Retry:
    error: ErrorInfo
    delay: float
    prompt: str | None = None


@dataclass(frozen=True)
class Failure:
    error: ErrorInfo
    prompt: str | None = None
    tolerate: int = 0  # a for_each item: how many failed items its step tolerates
    # `on_error` of the step (or of a for_each item's step, when the item fails it):
    # continue (the step ends failed, the run goes on) or the default it succeeds with.
    go_on: bool = False
    default: Success | None = None


@dataclass(frozen=True)
class Expand:
    """A for_each step's list: each item becomes an execution of its own, released
    ``concurrency`` at a time; the step finishes with its last item."""

    items: list[Any]
    concurrency: int
    prompt: str | None = None


@dataclass(frozen=True)
class Skipped:
    """The step's `when` is false, or a dependency did not succeed: it ran nothing."""

    reason: str
    prompt: str | None = None


@dataclass(frozen=True)
class Park:
    """The step waits (an approval, a wait, a child run): it becomes ``waiting``, gives
    up its slot of the run's cap, and keeps ``info`` (shown to users as the step's
    ``waiting``). With ``until`` it is claimed again once that time has passed (its
    executor sees ``woken``); without, only ``Store.resolve`` ends it. ``callback``:
    the hash of a callback token and when it expires (an approval's signed URL)."""

    until: dt.datetime | None
    info: dict[str, Any]
    callback: tuple[str, dt.datetime] | None = None
    prompt: str | None = None
    # What the step.waiting event adds for the owner (the callback URL): never kept on the step.
    event: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotDue:
    """A claim of a waiting step whose time has not come: wake it again at ``until``."""

    until: dt.datetime


Outcome = Success | Retry | Failure | Skipped | Expand | Park


@dataclass(frozen=True)
class Applied:
    """What a change released to the queue (send now, after ``delay``), and whether
    the run ended with it."""

    queued: list[str]
    delay: float = 0.0
    finished: bool = False


@dataclass(frozen=True)
class ReusedStep:
    """A rerun's step that is not run again: created finished (succeeded or skipped, as
    in the source run) with the source's answer, or the answer the user edited in."""

    step_id: str
    status: StepStatus
    prompt: str | None
    output: str | None
    outputs: dict[str, Any] | list[Any] | None
    model: str | None
    edited: bool = False


@dataclass(frozen=True)
class Family:
    """A run's links to other runs: the run itself (without its steps), the workflow
    names from the root run down to it, and its unfinished child runs."""

    run: RunState
    lineage: list[str]
    active_children: list[str]
    current_child: bool = False  # its parent's step names it as its child (a run retry starts another)


@dataclass(frozen=True)
class Started:
    run: RunState
    queued: list[str]  # the steps released to the queue


@dataclass(frozen=True)
class Controlled:
    status: RunStatus
    queued: list[str]  # the steps to send
    finished: bool = False


class Store(Protocol):
    async def create_run(
        self,
        run: RunState,
        graph: Sequence[StepNode],
        *,
        max_in_flight: int = 50,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        reused: Sequence[ReusedStep] = (),
    ) -> Started:
        """Insert the run and its steps (from ``graph``), queue the steps without
        dependencies, release up to ``max_in_flight`` of them, append events. With an
        ``idempotency_key`` already used by the owner, return that earlier run (and
        release nothing) if ``request_hash`` matches (ConflictError if not). ``reused``
        steps (a rerun) are created finished; their dependents do not wait for them. A
        run with a ``parent_run_id`` records itself as the child of that run's step."""
        ...

    async def claim(self, run_id: str, step_id: str, lease_seconds: float, *, with_spec: bool = True) -> Claim | NotDue | None:
        """Claim a released queued step (or one whose lease expired, or a waiting step
        whose ``until`` has passed) of a runnable run. None means a duplicate or stale
        message: acknowledge it and move on; NotDue, a waiting step to wake later. Its
        spec may be left out when ``with_spec`` is false (the engine caches plans)."""
        ...

    async def complete(self, claim: Claim, outcome: Outcome) -> Applied | None:
        """Record the outcome if the claim is still current (None otherwise: the
        result is discarded) and update the counters it moves, atomically."""
        ...

    async def resolve(self, run_id: str, step_id: str, outcome: Success | Failure, *, user_id: str | None = None) -> Applied | None:
        """End a ``waiting`` step with ``outcome`` (an answer, a child run's end), with
        the counters of ``complete``. None if the step is not waiting (already answered,
        woken, cancelled), or not ``user_id``'s."""
        ...

    async def control(self, run_id: str, decide: Callable[[RunState], Control], *, user_id: str | None = None) -> Controlled:
        """Apply a control action decided on the locked run; NotFound if there is no
        such run (for ``user_id``), ConflictError (from ``decide``) if not allowed now."""
        ...

    async def get_run(self, run_id: str, *, user_id: str | None = None) -> RunState | None:
        """The run with every step; None if unknown (or not ``user_id``'s)."""
        ...

    async def family(self, run_id: str) -> Family | None:
        """The run's parent chain and unfinished children (see ``Family``); None if unknown."""
        ...

    async def events(self, run_id: str, after: int = 0, wait: float = 0.0, *, user_id: str | None = None) -> list[Event]:
        """Events with ``seq > after``; waits up to ``wait`` seconds for the first."""
        ...


EventSpec = tuple[str, str | None, dict[str, Any]]  # (type, step id, data)


def outcome_event(step_id: str, attempt: int, outcome: Outcome) -> EventSpec:
    if isinstance(outcome, Success):
        data = {"attempt": attempt, "model": outcome.model, "usage": outcome.usage.to_dict(), "latency_ms": outcome.latency_ms, "output": _preview(outcome.output)}
        if outcome.recovered is not None:
            data["on_error"] = {"default": True, "error": outcome.recovered.to_dict()}
        return ("step.succeeded", step_id, data)
    if isinstance(outcome, Retry):
        return ("step.retrying", step_id, {"attempt": attempt, "error": outcome.error.to_dict(), "delay": outcome.delay})
    if isinstance(outcome, Skipped):
        return ("step.skipped", step_id, {"reason": outcome.reason})
    if isinstance(outcome, Park):
        return ("step.waiting", step_id, {"attempt": attempt, **outcome.info, **outcome.event})
    if isinstance(outcome, Expand):
        return ("step.expanded", step_id, {"attempt": attempt, "items": len(outcome.items), "concurrency": outcome.concurrency})
    return ("step.failed", step_id, {"attempt": attempt, "error": outcome.error.to_dict(), **({"on_error": "continue"} if outcome.go_on else {})})


def _preview(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
