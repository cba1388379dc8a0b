"""Plain records moving inside the engine and its stores."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..spec.model import STEP_KINDS


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class StepStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # parked (an approval, a wait, a child run): not finished, not in flight
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED)


class Mode(StrEnum):
    AUTO = "auto"
    STEP = "step"  # pause after each step until told to go on


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        data = data or {}
        return cls(int(data.get("prompt_tokens", 0)), int(data.get("completion_tokens", 0)))


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    step_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "step_id": self.step_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ErrorInfo | None:
        return cls(data["type"], data["message"], data.get("step_id")) if data else None


@dataclass
class StepState:
    step_id: str
    position: int
    status: StepStatus = StepStatus.PENDING
    attempt: int = 0
    prompt: str | None = None
    output: str | None = None
    outputs: dict[str, Any] | list[Any] | None = None  # a for_each step: one entry per item
    error: ErrorInfo | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: int | None = None
    queued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    lease_until: dt.datetime | None = None
    not_before: dt.datetime | None = None
    retry_base: int = 0  # the attempt count when a run retry last reset this step
    # The protocol's bookkeeping (not shown to users): see engine/store.py.
    needs: tuple[str, ...] = ()
    reads: tuple[str, ...] | None = None  # what a claim reads; None: needs
    dependents: tuple[str, ...] = ()
    waiting: int = 0  # needs not finished yet
    released: bool = False  # queued with a message out (counted in the run's in_flight)
    # A for_each item: its step, and {value, index, length}.
    parent: str | None = None
    item: dict[str, Any] | None = None
    items_failed: int = 0  # a for_each step: its failed items so far
    reused: bool = False  # a rerun: finished at creation with the source run's answer (no call)
    child_run_id: str | None = None  # a workflow step: the child run it started
    # A parked step: what it waits for ({kind, until, message, fields, ...}), shown to
    # users; kept while a woken step runs (so its executor knows it was woken).
    waiting_for: dict[str, Any] | None = None

    @property
    def woken(self) -> bool:
        """Whether this claim ends a wait (the step parked before), not a first run."""
        return self.waiting_for is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.step_id,
            "status": self.status.value,
            "attempt": self.attempt,
            "prompt": self.prompt,
            "output": self.output,
            "outputs": self.outputs,
            "waiting": self.waiting_for if self.status is StepStatus.WAITING else None,
            "item": {"step": self.parent, "index": self.item["index"]} if self.parent is not None and self.item is not None else None,
            "error": self.error.to_dict() if self.error else None,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "latency_ms": self.latency_ms,
            "queued_at": _iso(self.queued_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "reused": self.reused,
            "child_run_id": self.child_run_id,
        }


@dataclass
class RunState:
    id: str
    spec: dict[str, Any]
    inputs: dict[str, Any]
    status: RunStatus = RunStatus.QUEUED
    mode: Mode = Mode.AUTO
    owner_id: str | None = None
    workflow_id: str | None = None
    outputs: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    usage: Usage = field(default_factory=Usage)
    webhook_url: str | None = None
    created_at: dt.datetime = field(default_factory=now)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    steps: dict[str, StepState] = field(default_factory=dict)
    step_budget: int = 0  # step mode: claims allowed before the run pauses again
    # Counters: steps not finished, steps in flight (released or running), steps held
    # back by the cap on steps in flight.
    unfinished: int = 0
    in_flight: int = 0
    held: int = 0
    max_in_flight: int = 50
    # Links: the workflow step that started this run (a child run), the run it reran.
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    rerun_of_run_id: str | None = None
    rerun_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        kinds = _kinds(self.spec)
        return {
            "id": self.id,
            "workflow": self.spec.get("name"),
            "workflow_id": self.workflow_id,
            "status": self.status.value,
            "mode": self.mode.value,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "error": self.error.to_dict() if self.error else None,
            "usage": self.usage.to_dict(),
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_ms": _ms(self.started_at or self.created_at, self.finished_at),
            "parent": {"run_id": self.parent_run_id, "step_id": self.parent_step_id} if self.parent_run_id else None,
            "rerun_of": {"run_id": self.rerun_of_run_id, "from": self.rerun_from} if self.rerun_of_run_id else None,
            "steps": [{**s.to_dict(), "kind": kinds.get(s.parent or s.step_id, "prompt")} for s in sorted(self.steps.values(), key=lambda s: s.position)],
        }


@dataclass(frozen=True)
class Event:
    run_id: str
    seq: int
    type: str
    step_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "step_id": self.step_id, "data": self.data, "created_at": _iso(self.created_at)}


@dataclass(frozen=True)
class StepMessage:
    """A queue message: only a wake-up, "step S of run R may be ready"."""

    run_id: str
    step_id: str


def _kinds(spec: dict[str, Any]) -> dict[str, str]:
    """Each step's kind, read from the run's spec snapshot."""
    steps = spec.get("steps")
    if not isinstance(steps, list):
        return {}
    return {str(s.get("id")): next((k for k in STEP_KINDS if s.get(k) is not None), "prompt") for s in steps if isinstance(s, dict)}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ms(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None
