"""Issue 8, section 2: the database enforces the run protocol, not the caller.

No function of ours is executable by the API roles (anon, authenticated): the API
calls the protocol on its service connection with the verified user id as an
argument, and the functions acting for a user check ownership before any lock.
Users read their rows directly, under RLS."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from orchestrate.db.store import PostgresStore
from orchestrate.engine.core import Engine
from orchestrate.engine.decide import Action
from orchestrate.engine.queue import InProcessQueue
from orchestrate.engine.records import RunStatus
from orchestrate.errors import NotFound
from orchestrate.llm import MockProvider
from orchestrate.spec import parse_workflow
from tests.postgres_fixtures import acting_as

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[Any]
SOURCE = "name: pair\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: '{{ a }}'}\n"

# What the API roles may execute at all: Supabase's claim readers (no argument, so no
# id to forge: each reads only the caller's own claims) and, for a signed-in user, one
# intent: "redeliver my run's webhook" (it derives everything else from the database),
# and the Realtime policy's check "do I own the run this topic names" (invoker's rights, RLS).
CLAIM_READERS = {"auth.email()", "auth.jwt()", "auth.role()", "auth.uid()"}
INTENTS = {"orchestrate.redeliver_webhook(uuid)", "orchestrate.owns_run_topic(text)"}
EXPECTED = {"anon": CLAIM_READERS, "public": CLAIM_READERS, "authenticated": CLAIM_READERS | INTENTS}

EXECUTABLE = """
select p.oid::regprocedure::text
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%%'
  and has_function_privilege(%s, p.oid, 'execute')
order by 1
"""


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_url, max_size=4)
    yield store
    await store.close()


async def start_run(store: PostgresStore, owner: str) -> str:
    engine = Engine(store, InProcessQueue(), MockProvider())
    return (await engine.start(parse_workflow(SOURCE), {}, owner_id=owner)).id


@pytest.mark.parametrize("role", ["anon", "authenticated", "public"])
def test_the_api_roles_execute_only_the_claim_readers_and_intents(pg_conn: Conn, role: str) -> None:
    executable = {row[0] for row in pg_conn.execute(EXECUTABLE, (role,))}
    assert executable == EXPECTED[role]
    for name in executable - INTENTS:
        nargs = pg_conn.execute("select pronargs from pg_proc where oid = %s::regprocedure", (name,)).fetchone()
        assert nargs == (0,), name


def test_the_user_intent_refuses_another_users_run_and_missing_claims(pg_conn: Conn, make_user: Any, pg_url: str) -> None:
    alice, bob = make_user(), make_user()
    run_id = asyncio.run(_start_and_close(pg_url, alice))
    pg_conn.execute("update runs set status = 'succeeded', webhook_url = 'https://example.test/h' where id = %s", (run_id,))
    pg_conn.execute(
        "insert into webhook_deliveries (owner_id, run_id, event_type, payload, url) values (%s, %s, 'run.succeeded', '{}', 'https://example.test/h')",
        (alice, run_id),
    )
    with acting_as(pg_conn, "authenticated", bob):  # his claims, her run: nothing, and no lock
        assert pg_conn.execute("select orchestrate.redeliver_webhook(%s) ->> 'status'", (run_id,)).fetchone() == ("not-found",)
    for claims in (None, {"role": "authenticated"}, {"sub": alice}):
        with pg_conn.transaction(force_rollback=True):
            if claims is not None:
                pg_conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            pg_conn.execute("set local role authenticated")
            with pytest.raises(errors.InsufficientPrivilege):
                with pg_conn.transaction():
                    pg_conn.execute("select orchestrate.redeliver_webhook(%s)", (run_id,))
    count = pg_conn.execute("select count(*) from webhook_deliveries where run_id = %s", (run_id,)).fetchone()
    assert count == (1,)


def test_the_topic_check_answers_only_for_the_callers_own_runs(pg_conn: Conn, make_user: Any, pg_url: str) -> None:
    alice, bob = make_user(), make_user()
    run_id = asyncio.run(_start_and_close(pg_url, alice))
    topic = f"run:{run_id}"
    owns = "select orchestrate.owns_run_topic(%s)"
    with acting_as(pg_conn, "authenticated", alice):
        assert pg_conn.execute(owns, (topic,)).fetchone() == (True,)
        assert pg_conn.execute(owns, (topic.upper(),)).fetchone() == (False,)  # malformed: false, not an error
        assert pg_conn.execute(owns, ("run:" + run_id + "' or true --",)).fetchone() == (False,)
    with acting_as(pg_conn, "authenticated", bob):  # her run, his claims
        assert pg_conn.execute(owns, (topic,)).fetchone() == (False,)
    for claims in (None, {"role": "authenticated"}):  # no user: nothing is owned
        with pg_conn.transaction(force_rollback=True):
            if claims is not None:
                pg_conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            pg_conn.execute("set local role authenticated")
            assert pg_conn.execute(owns, (topic,)).fetchone() == (False,)


def test_no_orchestrate_function_is_reachable_even_with_a_users_own_ids(pg_conn: Conn, make_user: Any, pg_url: str) -> None:
    alice = make_user()
    store = asyncio.run(_start_and_close(pg_url, alice))
    functions = [row[0] for row in pg_conn.execute("select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'orchestrate'::regnamespace")]
    assert "orchestrate.complete_step(uuid,text,integer,jsonb)" in functions
    forged = json.dumps({"kind": "success", "output": "forged", "event": {"type": "step.succeeded"}})
    for role in ("anon", "authenticated"):
        with acting_as(pg_conn, role, alice):
            for call, params in [
                ("select orchestrate.complete_step(%s, 'a', 1, %s)", (store, forged)),
                ("select orchestrate.claim_step(%s, 'a', 60)", (store,)),
                ("select orchestrate.lock_run(%s, %s)", (store, alice)),
                ("select orchestrate.apply_control(%s, %s)", (store, json.dumps({"action": "cancel"}))),
                ("select orchestrate.run_json(%s)", (store,)),
            ]:
                with pytest.raises(errors.InsufficientPrivilege):
                    with pg_conn.transaction():
                        pg_conn.execute(call.encode(), params)
    status = pg_conn.execute("select status, output from step_runs where run_id = %s and step_id = 'a'", (store,)).fetchone()
    assert status == ("queued", None)


async def _start_and_close(pg_url: str, owner: str) -> str:
    store = await PostgresStore.open(pg_url, max_size=2)
    try:
        return await start_run(store, owner)
    finally:
        await store.close()


async def test_the_service_functions_refuse_another_users_ids(store: PostgresStore, make_user: Callable[..., str]) -> None:
    alice, bob = make_user(), make_user()
    run_id = await start_run(store, alice)
    engine = Engine(store, InProcessQueue(), MockProvider())
    for action in Action:
        with pytest.raises(NotFound):
            await engine.control(run_id, action, user_id=bob)
    async with store.pool.connection() as conn:
        for user in (bob, None):  # no user: refused too (fail closed), unless the service asks for any owner
            cur = await conn.execute("select orchestrate.lock_run(%s, %s)", (run_id, user))
            assert await cur.fetchone() == (None,)
        with pytest.raises(errors.InsufficientPrivilege, match="needs an owner"):
            await conn.execute("select orchestrate.create_run(null, %s, '[]')", (json.dumps({"id": "00000000-0000-4000-8000-0000000000cc", "spec": {}}),))
    run = await store.get_run(run_id, user_id=alice)
    assert run is not None and run.status is RunStatus.QUEUED


async def test_another_user_holding_a_transaction_cannot_block_a_control(store: PostgresStore, make_user: Callable[..., str]) -> None:
    alice, bob = make_user(), make_user()
    run_id = await start_run(store, alice)
    engine = Engine(store, InProcessQueue(), MockProvider())
    async with store.pool.connection() as held, held.transaction():
        # Bob's request for Alice's run, its transaction left open.
        cur = await held.execute("select orchestrate.lock_run(%s, %s)", (run_id, bob))
        assert await cur.fetchone() == (None,)
        # A lock would make this wait forever; the bound only turns a hang into a failure.
        paused = await asyncio.wait_for(engine.control(run_id, Action.PAUSE, user_id=alice), timeout=30)
        assert paused.status is RunStatus.PAUSED


@pytest.mark.parametrize(
    "claims",
    [None, {}, {"sub": None, "role": "authenticated"}, {"role": "authenticated"}, {"sub": "not-a-uuid"}, {"sub": "00000000-0000-0000-0000-000000000000"}],
    ids=["no-claims", "empty", "null-sub", "no-sub", "odd-sub", "no-role"],
)
def test_missing_or_odd_claims_are_refused(pg_conn: Conn, make_user: Any, pg_url: str, claims: dict[str, Any] | None) -> None:
    alice = make_user()
    run_id = asyncio.run(_start_and_close(pg_url, alice))
    with pg_conn.transaction(force_rollback=True):
        if claims is not None:
            pg_conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        pg_conn.execute("set local role authenticated")
        with pytest.raises(errors.InsufficientPrivilege):
            with pg_conn.transaction():
                pg_conn.execute("select orchestrate.apply_control(%s, %s)", (run_id, json.dumps({"action": "cancel"})))
        try:
            rows = pg_conn.execute("select id from runs where id = %s", (run_id,)).fetchall()
        except errors.InvalidTextRepresentation:  # the odd sub is not a uuid: refused outright
            rows = []
        assert rows == []
    assert pg_conn.execute("select status from runs where id = %s", (run_id,)).fetchone() == ("queued",)


def test_the_orchestrate_schema_is_not_exposed_by_the_data_api() -> None:
    config = tomllib.loads((REPO / "supabase" / "config.toml").read_text())
    schemas = config["api"]["schemas"]
    assert "public" in schemas  # the file was read as intended
    assert "orchestrate" not in schemas
    assert "orchestrate" not in config["api"].get("extra_search_path", [])
