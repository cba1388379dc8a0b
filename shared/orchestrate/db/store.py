"""The engine's Store on PostgreSQL (psycopg 3, async pool).

Each protocol phase is one SQL function (see the run-protocol migration): a claim is
one round trip, and so is a completion in the common case (see ``complete``). No server-side prepared statements and
no session state outlive a transaction, so Supabase's transaction pooler works.

User-scoped calls (``user_id=...``) run as that user inside the transaction
(``role authenticated`` + ``request.jwt.claims``), so RLS guards every row they touch."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from dataclasses import dataclass
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ..engine.decide import Control, StepNode
from ..engine.records import ErrorInfo, Event, Mode, RunState, RunStatus, StepMessage, StepState, StepStatus, Usage
from ..engine.store import Applied, Claim, Controlled, Expand, Failure, Family, NotDue, Outcome, Park, Retry, ReusedStep, Skipped, Started, Success, outcome_event
from ..errors import ConflictError, NotFound

_POLL = 0.05  # seconds between polls while waiting for events (no LISTEN behind a pooler)

# A run with every step, read as the user under RLS (no function: the API roles execute
# none). Callers add the where clause on ``r``.
RUN_JSON = (
    "select to_jsonb(r) - 'last_seq' || jsonb_build_object('steps', coalesce(("
    " select jsonb_agg(to_jsonb(s) - 'run_id' - 'owner_id' - 'updated_at' - 'needs' - 'reads' - 'dependents' - 'callback_hash' - 'callback_expires_at' order by s.position, s.item_index nulls first)"
    " from public.step_runs s where s.run_id = r.id), '[]'::jsonb)) from public.runs r"
)


# A run without its steps, the workflow names from its root run down to it (parent links
# never form a cycle: a parent exists before its child), and its unfinished children.
_FAMILY = """
with recursive up as (
  select r.id, r.parent_run_id, r.spec ->> 'name' as name, 0 as level from public.runs r where r.id = %(run)s
  union all
  select p.id, p.parent_run_id, p.spec ->> 'name', up.level + 1 from public.runs p join up on p.id = up.parent_run_id
)
select (select to_jsonb(r) - 'spec' - 'last_seq' - 'request_hash'
               || jsonb_build_object('spec', jsonb_build_object('name', r.spec ->> 'name'), 'steps', '[]'::jsonb)
          from public.runs r where r.id = %(run)s),
       (select coalesce(array_agg(coalesce(name, '?') order by level desc), '{}') from up),
       (select coalesce(array_agg(c.id::text order by c.created_at), '{}') from public.runs c
         where c.parent_run_id = %(run)s and c.status in ('queued', 'running', 'paused')),
       exists (select 1 from public.runs r join public.step_runs s on s.run_id = r.parent_run_id and s.step_id = r.parent_step_id
                where r.id = %(run)s and s.child_run_id = r.id)
"""

_ENDED_CHILDREN = """
(select c.id::text from public.step_runs s join public.runs c on c.id = s.child_run_id
  where s.status = 'waiting' and s.child_run_id is not null and c.status in ('succeeded', 'failed', 'cancelled')
  limit %(limit)s)
union
(select p.id::text from public.runs c join public.runs p on p.id = c.parent_run_id
  where c.parent_run_id is not null and c.status in ('queued', 'running', 'paused')
    and p.status in ('succeeded', 'failed', 'cancelled')
  limit %(limit)s)
"""


@dataclass(frozen=True)
class CallbackStep:
    run_id: str
    step_id: str
    owner_id: str
    status: str
    expires_at: dt.datetime | None


class PostgresStore:
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, conninfo: str, *, min_size: int = 1, max_size: int = 10) -> PostgresStore:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"prepare_threshold": None, "autocommit": True},
            open=False,
        )
        await pool.open(wait=True, timeout=10)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self, user_id: str | None = None) -> AsyncIterator[AsyncConnection[Any]]:
        """A pipelined transaction; as ``user_id`` (role authenticated, RLS on) if given,
        else as the login role (the service role, for the runner)."""
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            if user_id is not None:
                claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"})
                await conn.execute(
                    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)", (claims,)
                )
            yield conn

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
        if run.owner_id is None:
            raise ValueError("a run stored in Postgres needs an owner_id")
        payload = {
            "id": run.id,
            "workflow_id": run.workflow_id,
            "spec": run.spec,
            "inputs": run.inputs,
            "mode": run.mode.value,
            "webhook_url": run.webhook_url,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "max_in_flight": max_in_flight,
            "parent_run_id": run.parent_run_id,
            "parent_step_id": run.parent_step_id,
            "rerun_of_run_id": run.rerun_of_run_id,
            "rerun_from": run.rerun_from,
        }
        done = {r.step_id: r for r in reused}
        steps = [
            {
                "id": n.step_id,
                "position": n.position,
                "needs": list(n.needs),
                "reads": None if n.reads is None else list(n.reads),
                "dependents": list(n.dependents),
                **({"reused": _reused(done[n.step_id])} if n.step_id in done else {}),
            }
            for n in graph
        ]
        try:
            # The service connection, with the verified owner as an argument (the
            # function is not executable by the API roles).
            async with self.pool.connection() as conn:
                cur = await conn.execute("select orchestrate.create_run(%s, %s, %s)", (run.owner_id, Jsonb(payload), Jsonb(steps)))
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            if idempotency_key is None:
                raise
            return Started(await self._idempotent_replay(run.owner_id, idempotency_key, request_hash), [])
        assert row is not None
        return Started(run_from_json(row[0]["run"]), list(row[0]["queued"]))

    async def _idempotent_replay(self, user_id: str, key: str, request_hash: str | None) -> RunState:
        """The run an earlier request with this Idempotency-Key created, if the request
        was the same; ConflictError if the key was used for a different request."""
        async with self.transaction(user_id) as conn:
            cur = await conn.execute(f"{RUN_JSON} where r.idempotency_key = %s", (key,))
            row = await cur.fetchone()
        if row is None:  # pragma: no cover - the conflicting row was deleted meanwhile
            raise ConflictError("the Idempotency-Key is in use; retry the request")
        if row[0]["request_hash"] != request_hash:
            raise ConflictError("this Idempotency-Key was already used with a different request")
        return run_from_json(row[0])

    async def claim(self, run_id: str, step_id: str, lease_seconds: float, *, with_spec: bool = True) -> Claim | NotDue | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute("select orchestrate.claim_step(%s, %s, %s, %s)", (run_id, step_id, lease_seconds, with_spec))
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        data = row[0]
        if "not_before" in data:
            return NotDue(dt.datetime.fromisoformat(data["not_before"]))
        run = run_from_json({**data["run"], "steps": data["steps"]})
        return Claim(run, step_id, data["attempt"], tries=data["tries"])

    async def complete(self, claim: Claim, outcome: Outcome) -> Applied | None:
        """One call, one transaction: the step, its direct dependents and the run row."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select orchestrate.complete_step(%s, %s, %s, %s)", (claim.run.id, claim.step_id, claim.attempt, Jsonb(_outcome(claim, outcome)))
            )
            row = await cur.fetchone()
        assert row is not None
        return _applied(row[0])

    async def resolve(self, run_id: str, step_id: str, outcome: Success | Failure, *, user_id: str | None = None) -> Applied | None:
        if not valid_id(run_id):
            return None
        state = await self._resolving(run_id, step_id)
        if state is None:
            return None
        claim = Claim(state, step_id, state.steps[step_id].attempt)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select orchestrate.resolve_step(%s, %s, %s, %s, %s)", (run_id, step_id, user_id, user_id is None, Jsonb(_outcome(claim, outcome)))
            )
            row = await cur.fetchone()
        assert row is not None
        return _applied(row[0])

    async def _resolving(self, run_id: str, step_id: str) -> RunState | None:
        """The run with only the step to resolve (its attempt names the outcome's event)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select to_jsonb(s) from public.step_runs s where s.run_id = %s and s.step_id = %s and s.status = 'waiting'", (run_id, step_id)
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return RunState(run_id, {}, {}, steps={step_id: _step(row[0])})

    async def control(self, run_id: str, decide: Callable[[RunState], Control], *, user_id: str | None = None) -> Controlled:
        """On the service connection: ``lock_run`` locks the run only if it is
        ``user_id``'s (no lock is ever taken on another user's run); without a user
        (the service's own tools) any run."""
        if not valid_id(run_id):
            raise NotFound(f"run {run_id} not found")
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("select orchestrate.lock_run(%s, %s, %s)", (run_id, user_id, user_id is None))
            row = await cur.fetchone()
            if row is None or row[0] is None:
                raise NotFound(f"run {run_id} not found")
            decision = decide(run_from_json(row[0]))
            payload = {"action": decision.action.value, "reset": decision.reset, "step_budget": decision.step_budget}
            cur = await conn.execute("select orchestrate.apply_control(%s, %s)", (run_id, Jsonb(payload)))
            out = await cur.fetchone()
        assert out is not None
        return Controlled(RunStatus(out[0]["status"]), list(out[0]["queued"]), finished=bool(out[0]["finished"]))

    async def get_run(self, run_id: str, *, user_id: str | None = None) -> RunState | None:
        if not valid_id(run_id):
            return None
        async with self.transaction(user_id) as conn:
            cur = await conn.execute(f"{RUN_JSON} where r.id = %s", (run_id,))
            row = await cur.fetchone()
        return run_from_json(row[0]) if row and row[0] else None

    async def family(self, run_id: str) -> Family | None:
        """On the service connection: the engine asks, for any owner's run."""
        if not valid_id(run_id):
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(_FAMILY, {"run": run_id})
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        return Family(run_from_json(row[0]), list(row[1]), list(row[2]), bool(row[3]))

    async def ended_children(self, limit: int = 100) -> list[str]:
        """Runs whose family needs settling (``Engine.settle``) that no process did: a
        child run that ended while its parent's step still waits for it, and a run that
        ended with children still going."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_ENDED_CHILDREN, {"limit": limit})
            rows = await cur.fetchall()
        return [run_id for (run_id,) in rows]

    async def events(self, run_id: str, after: int = 0, wait: float = 0.0, *, user_id: str | None = None) -> list[Event]:
        if not valid_id(run_id):
            return []
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            async with self.transaction(user_id) as conn:
                cur = await conn.execute(
                    "select seq, type, step_id, data, created_at from public.run_events where run_id = %s and seq > %s order by seq",
                    (run_id, after),
                )
                rows = await cur.fetchall()
            if rows or asyncio.get_running_loop().time() >= deadline:
                return [Event(run_id, seq, type_, step_id, data, created_at) for seq, type_, step_id, data, created_at in rows]
            await asyncio.sleep(_POLL)


    async def list_runs(
        self,
        user_id: str,
        *,
        workflow_id: str | None = None,
        parent_run_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        after: tuple[dt.datetime, str] | None = None,
    ) -> list[RunState]:
        """The user's runs, newest first, without their steps."""
        if any(v is not None and not valid_id(v) for v in (workflow_id, parent_run_id)):
            return []
        where: list[str] = []
        params: list[Any] = []
        if workflow_id is not None:
            where.append("workflow_id = %s")
            params.append(workflow_id)
        if parent_run_id is not None:
            where.append("parent_run_id = %s")
            params.append(parent_run_id)
        if status is not None:
            where.append("status = %s")
            params.append(status.value)
        if after is not None:
            where.append("(created_at, id) < (%s, %s)")
            params += [after[0], after[1]]
        query = "select to_jsonb(r) || jsonb_build_object('steps', '[]'::jsonb) from public.runs r"
        if where:
            query += " where " + " and ".join(where)
        query += " order by created_at desc, id desc limit %s"
        params.append(limit)
        async with self.transaction(user_id) as conn:
            cur = await conn.execute(query, params)
            rows = await cur.fetchall()
        return [run_from_json(row[0]) for row in rows]


    async def callback_step(self, token_hash: str) -> CallbackStep | None:
        """The step a callback token (by its hash) answers, on the service connection:
        the caller holds no access token, the token itself is the credential."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select run_id::text, step_id, owner_id::text, status, callback_expires_at from public.step_runs where callback_hash = %s",
                (token_hash,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return CallbackStep(row[0], row[1], row[2], row[3], row[4])

    async def timed_waits(self, limit: int = 1000) -> list[tuple[StepMessage, dt.datetime]]:
        """Waiting steps of active runs that wake at a time, soonest first: what an
        in-process queue that stopped had armed (its timers died with it)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select s.run_id::text, s.step_id, s.not_before from public.step_runs s join public.runs r on r.id = s.run_id"
                " where s.status = 'waiting' and s.not_before is not null and r.status in ('queued', 'running')"
                " order by s.not_before limit %s",
                (limit,),
            )
            rows = await cur.fetchall()
        return [(StepMessage(run_id, step_id), until) for run_id, step_id, until in rows]

    async def stuck_steps(self, grace_seconds: float, limit: int = 1000) -> list[StepMessage]:
        """Steps that need a new wake-up (see ``orchestrate.stuck_steps``), marked as re-sent."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("select run_id::text, step_id from orchestrate.stuck_steps(%s, %s)", (grace_seconds, limit))
            rows = await cur.fetchall()
        return [StepMessage(run_id, step_id) for run_id, step_id in rows]


def valid_id(value: str) -> bool:
    """Whether ``value`` is a UUID; anything else can only be "not found"."""
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _applied(result: dict[str, Any]) -> Applied | None:
    if result["status"] == "stale":
        return None
    return Applied(list(result["queued"]), delay=float(result.get("delay") or 0.0), finished=bool(result["finished"]))


def _outcome(claim: Claim, outcome: Outcome) -> dict[str, Any]:
    type_, step_id, data = outcome_event(claim.step_id, claim.attempt, outcome)
    base: dict[str, Any] = {"prompt": outcome.prompt, "event": {"type": type_, "step_id": step_id, "data": data}}
    if isinstance(outcome, Success):
        return {
            **base,
            "kind": "success",
            "output": outcome.output,
            "outputs": outcome.outputs,
            "model": outcome.model,
            "usage": outcome.usage.to_dict(),
            "latency_ms": outcome.latency_ms,
        }
    if isinstance(outcome, Retry):
        return {**base, "kind": "retry", "error": outcome.error.to_dict(), "delay": outcome.delay}
    if isinstance(outcome, Skipped):
        return {**base, "kind": "skip"}
    if isinstance(outcome, Park):
        callback = outcome.callback[0] if outcome.callback else None
        until = outcome.until.isoformat() if outcome.until else None
        expires = outcome.callback[1].isoformat() if outcome.callback else None
        return {**base, "kind": "park", "until": until, "info": outcome.info, "callback_hash": callback, "callback_expires_at": expires}
    if isinstance(outcome, Expand):
        return {**base, "kind": "expand", "items": outcome.items, "concurrency": outcome.concurrency}
    failure: dict[str, Any] = {**base, "kind": "failure", "error": outcome.error.to_dict()}
    if outcome.tolerate:
        failure["tolerate"] = outcome.tolerate
    if outcome.go_on:
        failure["continue"] = True
    if outcome.default is not None:
        failure["default"] = {"output": outcome.default.output, "outputs": outcome.default.outputs}
    return failure


def _reused(step: ReusedStep) -> dict[str, Any]:
    return {
        "status": step.status.value,
        "prompt": step.prompt,
        "output": step.output,
        "outputs": step.outputs,
        "model": step.model,
        "edited": step.edited,
    }


def _ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _step(s: dict[str, Any]) -> StepState:
    return StepState(
        step_id=s["step_id"],
        position=s["position"],
        status=StepStatus(s["status"]),
        attempt=s["attempt"],
        prompt=s["prompt"],
        output=s["output"],
        outputs=s["outputs"],
        error=ErrorInfo.from_dict(s["error"]),
        model=s["model"],
        usage=Usage.from_dict(s["usage"]),
        latency_ms=s["latency_ms"],
        queued_at=_ts(s["queued_at"]),
        started_at=_ts(s["started_at"]),
        finished_at=_ts(s["finished_at"]),
        lease_until=_ts(s["lease_until"]),
        not_before=_ts(s["not_before"]),
        retry_base=s.get("retry_base", 0),
        waiting=s.get("waiting", 0),
        released=s.get("released", False),
        parent=s.get("parent"),
        item=s.get("item"),
        items_failed=s.get("items_failed", 0),
        reused=s.get("reused", False),
        child_run_id=s.get("child_run_id"),
        waiting_for=s.get("waiting_for"),
    )


def _order(step: StepState) -> tuple[int, int]:
    """File order; a for_each step's items right after it, in item order."""
    return (step.position, -1 if step.item is None else int(step.item["index"]))


def run_from_json(data: dict[str, Any], base: RunState | None = None) -> RunState:
    """A run from ``RUN_JSON`` (every step) or a claim (the steps it reads; ``spec``
    only if asked for, else taken from ``base``)."""
    steps = {s.step_id: s for s in sorted((_step(s) for s in data["steps"]), key=_order)}
    return RunState(
        id=data["id"],
        spec=data["spec"] if "spec" in data else (base.spec if base else {}),
        inputs=data["inputs"],
        status=RunStatus(data["status"]),
        mode=Mode(data["mode"]),
        owner_id=data["owner_id"],
        workflow_id=data["workflow_id"],
        outputs=data["outputs"],
        error=ErrorInfo.from_dict(data["error"]),
        usage=Usage.from_dict(data["usage"]),
        webhook_url=data["webhook_url"],
        created_at=_ts(data["created_at"]) or dt.datetime.now(dt.UTC),
        started_at=_ts(data["started_at"]),
        finished_at=_ts(data["finished_at"]),
        steps=steps,
        step_budget=data.get("step_budget", 0),
        parent_run_id=data.get("parent_run_id"),
        parent_step_id=data.get("parent_step_id"),
        rerun_of_run_id=data.get("rerun_of_run_id"),
        rerun_from=data.get("rerun_from"),
    )
