"""The Store interface the engine talks to. Implementations: ``MemoryStore`` here,
the Postgres store in ``orchestrate.db``. Each method is one atomic change that also
appends its events, so the event log always matches the state."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from .decide import Control, Transition
from .records import ErrorInfo, Event, RunState, Usage

Decider = Callable[[RunState], Transition]


@dataclass(frozen=True)
class Claim:
    """A step claimed for execution: the run (with every step's state) and the attempt."""

    run: RunState
    step_id: str
    attempt: int
    need: frozenset[str] | None = None  # the steps read in full (None: all)
    tries: int = 0  # attempts since the step was last reset (a run retry); 0: same as attempt

    @property
    def attempts_used(self) -> int:
        return self.tries or self.attempt


@dataclass(frozen=True)
class Success:
    prompt: str
    output: str
    outputs: dict[str, Any] | None
    model: str
    usage: Usage
    latency_ms: int


@dataclass(frozen=True)
class Retry:
    error: ErrorInfo
    delay: float
    prompt: str | None = None


@dataclass(frozen=True)
class Failure:
    error: ErrorInfo
    prompt: str | None = None


Outcome = Success | Retry | Failure


@dataclass(frozen=True)
class Applied:
    """What a completion changed: steps to enqueue now (with a delay), and the run's status."""

    queued: list[str]
    delay: float = 0.0
    finished: bool = False


class Store(Protocol):
    async def create_run(
        self, run: RunState, transition: Transition, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> RunState:
        """Insert the run and its steps, apply the first decisions, append events. With
        an ``idempotency_key`` already used by the owner, return that earlier run if
        ``request_hash`` matches (ConflictError if not), creating nothing."""
        ...

    async def claim(
        self, run_id: str, step_id: str, lease_seconds: float, *, need: Collection[str] | None = None, with_spec: bool = True
    ) -> Claim | None:
        """Claim a queued step (or one whose lease expired) of a runnable run. None
        means a duplicate or stale message: acknowledge it and move on. The claim's run
        holds every step's status and the full results of the steps in ``need`` (all
        when None); its spec may be left out when ``with_spec`` is false."""
        ...

    async def complete(self, claim: Claim, outcome: Outcome, decide: Decider) -> Applied | None:
        """Record the outcome if the claim is still current (None otherwise: the
        result is discarded), and apply the transition ``decide`` makes from the run
        with this outcome in it, atomically with the run's other completions."""
        ...

    async def control(self, run_id: str, decide: Callable[[RunState], Control], *, user_id: str | None = None) -> Control:
        """Apply a control action decided on the locked run; NotFound if there is no
        such run (for ``user_id``), ConflictError (from ``decide``) if not allowed now."""
        ...

    async def get_run(self, run_id: str, *, user_id: str | None = None) -> RunState | None:
        """The run with every step; None if unknown (or not ``user_id``'s)."""
        ...

    async def events(self, run_id: str, after: int = 0, wait: float = 0.0, *, user_id: str | None = None) -> list[Event]:
        """Events with ``seq > after``; waits up to ``wait`` seconds for the first."""
        ...


EventSpec = tuple[str, str | None, dict[str, Any]]  # (type, step id, data)


def transition_events(transition: Transition) -> list[EventSpec]:
    """The events that describe a transition, in the order a reader expects."""
    events: list[EventSpec] = []
    events += [("step.skipped", sid, {"reason": reason}) for sid, reason in transition.skip.items()]
    events += [("step.failed", sid, {"error": error.to_dict()}) for sid, error in transition.fail.items()]
    events += [("step.queued", sid, {}) for sid in transition.queue]
    events += [("step.cancelled", sid, {}) for sid in transition.cancel]
    if transition.finish is not None:
        data: dict[str, Any] = {"error": transition.error.to_dict()} if transition.error else {}
        events.append((f"run.{transition.finish.value}", None, data))
    elif transition.pause:
        events.append(("run.paused", None, {"after_step": True}))
    return events


def outcome_event(step_id: str, attempt: int, outcome: Outcome) -> EventSpec:
    if isinstance(outcome, Success):
        return (
            "step.succeeded",
            step_id,
            {"attempt": attempt, "model": outcome.model, "usage": outcome.usage.to_dict(), "latency_ms": outcome.latency_ms, "output": _preview(outcome.output)},
        )
    if isinstance(outcome, Retry):
        return ("step.retrying", step_id, {"attempt": attempt, "error": outcome.error.to_dict(), "delay": outcome.delay})
    return ("step.failed", step_id, {"attempt": attempt, "error": outcome.error.to_dict()})


def _preview(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
