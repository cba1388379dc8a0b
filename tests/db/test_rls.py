"""Row Level Security: a user reaches only their own rows, on every table."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.postgres_fixtures import acting_as

pytestmark = pytest.mark.postgres

TABLES = ["workflows", "runs", "step_runs", "run_events", "webhook_deliveries", "webhook_secrets"]
WRITABLE = ["workflows", "webhook_secrets"]  # a user writes these; runs change only through orchestrate.*
PROTOCOL = [t for t in TABLES if t not in WRITABLE]
# A column each table has that a user may change, to probe update rights.
TOUCH = {
    "workflows": "name = 'changed'",
    "runs": "status = 'cancelled'",
    "step_runs": "status = 'cancelled'",
    "run_events": "type = 'changed'",
    "webhook_deliveries": "status = 'failed'",
    "webhook_secrets": "secret = 'changed'",
}

Conn = psycopg.Connection[Any]
SECRET = "whsec_" + "A" * 43 + "="  # a valid key (the table checks the form)


def seed(conn: Conn, owner: str) -> dict[str, str]:
    """One row per table for ``owner`` (as the superuser); returns the ids."""
    with conn.transaction():
        workflow = conn.execute(
            "insert into workflows (owner_id, name, source, spec) values (%s, 'wf', 'name: wf', '{}')"
            " returning id::text",
            (owner,),
        ).fetchone()[0]
        run = conn.execute(
            "insert into runs (owner_id, workflow_id, spec) values (%s, %s, '{}') returning id::text",
            (owner, workflow),
        ).fetchone()[0]
        conn.execute(
            "insert into step_runs (run_id, step_id, owner_id, position) values (%s, 'a', %s, 0)",
            (run, owner),
        )
        conn.execute("""select orchestrate.append_events(%s, %s, '[{"type": "run.created"}]')""", (run, owner))
        delivery = conn.execute(
            "insert into webhook_deliveries (owner_id, run_id, event_type, payload, url)"
            " values (%s, %s, 'run.succeeded', '{}', 'https://example.test/hook') returning id::text",
            (owner, run),
        ).fetchone()[0]
        conn.execute("insert into webhook_secrets (owner_id, secret) values (%s, %s)", (owner, SECRET))
    return {"workflow": workflow, "run": run, "delivery": delivery}


def owners(conn: Conn, table: str) -> set[str]:
    query = sql.SQL("select distinct owner_id::text from {}").format(sql.Identifier(table))
    return {row[0] for row in conn.execute(query)}


def insert_as(conn: Conn, table: str, owner: str, rows: dict[str, str]) -> None:
    """Insert one row into ``table`` claiming ``owner``, attached to ``rows``' run."""
    statements = {
        "workflows": ("insert into workflows (owner_id, name, spec) values (%s, 'x', '{}')", (owner,)),
        "runs": ("insert into runs (owner_id, spec) values (%s, '{}')", (owner,)),
        "step_runs": (
            "insert into step_runs (run_id, step_id, owner_id) values (%s, 'zz', %s)",
            (rows["run"], owner),
        ),
        "run_events": (
            "insert into run_events (run_id, seq, owner_id, type) values (%s, 999, %s, 'x')",
            (rows["run"], owner),
        ),
        "webhook_deliveries": (
            "insert into webhook_deliveries (owner_id, run_id, event_type, payload, url)"
            " values (%s, %s, 'run.failed', '{}', 'https://example.test')",
            (owner, rows["run"]),
        ),
        "webhook_secrets": ("insert into webhook_secrets (owner_id, secret) values (%s, %s)", (owner, SECRET)),
    }
    query, params = statements[table]
    conn.execute(query.encode(), params)


@pytest.fixture
def alice_bob(pg_conn: Conn, make_user: Any) -> tuple[str, dict[str, str], str, dict[str, str]]:
    alice, bob = make_user(), make_user()
    return alice, seed(pg_conn, alice), bob, seed(pg_conn, bob)


def test_every_public_table_has_rls_enabled(pg_conn: Conn) -> None:
    rows = pg_conn.execute(
        "select relname, relrowsecurity from pg_class where relnamespace = 'public'::regnamespace"
        " and relkind = 'r'"
    ).fetchall()
    assert {name for name, _ in rows} >= set(TABLES)
    assert [name for name, enabled in rows if not enabled] == []


@pytest.mark.parametrize("table", TABLES)
def test_user_sees_only_own_rows(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice, _, bob, _ = alice_bob
    with acting_as(pg_conn, "authenticated", alice):
        assert owners(pg_conn, table) == {alice}
    with acting_as(pg_conn, "authenticated", bob):
        assert owners(pg_conn, table) == {bob}


@pytest.mark.parametrize("table", WRITABLE)
def test_user_cannot_change_or_delete_others_rows(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice, _, bob, _ = alice_bob
    where = sql.SQL("where owner_id = {}").format(sql.Literal(bob))
    with acting_as(pg_conn, "authenticated", alice):
        update = sql.SQL("update {} set {} ").format(sql.Identifier(table), sql.SQL(TOUCH[table])) + where
        assert pg_conn.execute(update).rowcount == 0
        delete = sql.SQL("delete from {} ").format(sql.Identifier(table)) + where
        assert pg_conn.execute(delete).rowcount == 0
    assert owners(pg_conn, table) >= {bob}  # as the superuser: still there


@pytest.mark.parametrize("table", WRITABLE)
def test_user_cannot_insert_rows_claiming_another_owner(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice, _, bob, bob_rows = alice_bob
    with acting_as(pg_conn, "authenticated", alice):
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            with pg_conn.transaction():
                insert_as(pg_conn, table, bob, bob_rows)


@pytest.mark.parametrize("table", PROTOCOL)
def test_user_cannot_write_run_tables_even_their_own_rows(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice, alice_rows, _, _ = alice_bob
    where = sql.SQL("where owner_id = {}").format(sql.Literal(alice))
    attempts = [
        sql.SQL("update {} set {} ").format(sql.Identifier(table), sql.SQL(TOUCH[table])) + where,
        sql.SQL("delete from {} ").format(sql.Identifier(table)) + where,
    ]
    with acting_as(pg_conn, "authenticated", alice):
        for statement in attempts:
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                with pg_conn.transaction():
                    pg_conn.execute(statement)
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            with pg_conn.transaction():
                insert_as(pg_conn, table, alice, alice_rows)


@pytest.mark.parametrize("table", ["step_runs", "run_events", "webhook_deliveries"])
def test_rows_cannot_be_attached_to_another_users_run(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice, _, _, bob_rows = alice_bob
    with pytest.raises(errors.ForeignKeyViolation):  # even by the service: the run's owner is part of the key
        with pg_conn.transaction():
            insert_as(pg_conn, table, alice, bob_rows)  # her owner_id, his run


def test_a_run_cannot_point_at_another_users_workflow(pg_conn: Conn, alice_bob: Any) -> None:
    alice, _, _, bob_rows = alice_bob
    with pytest.raises(errors.ForeignKeyViolation):
        with pg_conn.transaction():
            pg_conn.execute(
                "insert into runs (owner_id, workflow_id, spec) values (%s, %s, '{}')",
                (alice, bob_rows["workflow"]),
            )


def test_a_user_starts_and_locks_only_their_own_runs(pg_conn: Conn, alice_bob: Any) -> None:
    alice, alice_rows, bob, bob_rows = alice_bob
    run = {"id": "00000000-0000-4000-8000-0000000000aa", "owner_id": bob, "spec": {}, "inputs": {}}
    empty = {"queue": [], "skip": {}, "fail": {}, "cancel": [], "finish": None, "events": []}
    with acting_as(pg_conn, "authenticated", alice):
        with pytest.raises(errors.InsufficientPrivilege, match="only be started for oneself"):
            with pg_conn.transaction():
                pg_conn.execute("select orchestrate.create_run(%s, '[]', %s)", (json.dumps(run), json.dumps(empty)))
        assert pg_conn.execute("select orchestrate.lock_run(%s)", (bob_rows["run"],)).fetchone() == (None,)
        assert pg_conn.execute("select orchestrate.lock_run(%s)", (alice_rows["run"],)).fetchone()[0]["owner_id"] == alice
        with pytest.raises(errors.InsufficientPrivilege):  # the step runner's functions are not hers
            with pg_conn.transaction():
                pg_conn.execute("select orchestrate.claim_step(%s, 'a', 60)", (alice_rows["run"],))


@pytest.mark.parametrize("table", WRITABLE)
def test_user_cannot_give_a_row_away(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice, _, bob, _ = alice_bob
    with acting_as(pg_conn, "authenticated", alice):
        with pytest.raises((errors.InsufficientPrivilege, errors.ForeignKeyViolation)):
            with pg_conn.transaction():
                pg_conn.execute(
                    sql.SQL("update {} set owner_id = {}").format(sql.Identifier(table), sql.Literal(bob))
                )


def test_user_works_with_own_rows(pg_conn: Conn, make_user: Any) -> None:
    alice = make_user()
    with acting_as(pg_conn, "authenticated", alice):
        workflow = pg_conn.execute(
            "insert into workflows (owner_id, name, spec) values (%s, 'mine', '{}') returning id, updated_at",
            (alice,),
        ).fetchone()
        run = {"id": "00000000-0000-4000-8000-0000000000bb", "owner_id": alice, "workflow_id": str(workflow[0]), "spec": {}, "inputs": {}}
        empty = {"queue": [], "skip": {}, "fail": {}, "cancel": [], "finish": None, "events": [{"type": "run.queued"}]}
        created = pg_conn.execute("select orchestrate.create_run(%s, '[]', %s)", (json.dumps(run), json.dumps(empty))).fetchone()[0]
        assert created["owner_id"] == alice and created["status"] == "queued"
        assert pg_conn.execute("select seq, type from run_events where run_id = %s", (run["id"],)).fetchall() == [(1, "run.queued")]
        updated = pg_conn.execute(
            "update workflows set name = 'renamed', version = version + 1 where id = %s returning version",
            (workflow[0],),
        ).fetchone()
        assert updated == (2,)
        assert pg_conn.execute("delete from workflows where id = %s", (workflow[0],)).rowcount == 1


def test_signed_in_role_without_claims_sees_nothing(pg_conn: Conn, alice_bob: Any) -> None:
    with acting_as(pg_conn, "authenticated"):
        for table in TABLES:
            assert owners(pg_conn, table) == set()


@pytest.mark.parametrize("table", TABLES)
def test_anon_gets_nothing(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice = alice_bob[0]
    for user in (None, alice):  # even with a user's claims, anon has no grant
        with acting_as(pg_conn, "anon", user):
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                with pg_conn.transaction():
                    pg_conn.execute(sql.SQL("select * from {}").format(sql.Identifier(table)))


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_service_appends_events(pg_conn: Conn, alice_bob: Any, role: str) -> None:
    alice, rows = alice_bob[0], alice_bob[1]
    with acting_as(pg_conn, role, alice):
        with pytest.raises(errors.InsufficientPrivilege):
            with pg_conn.transaction():
                pg_conn.execute("""select orchestrate.append_events(%s, %s, '[{"type": "x"}]')""", (rows["run"], alice))


@pytest.mark.parametrize("table", TABLES)
def test_service_role_sees_everything(pg_conn: Conn, alice_bob: Any, table: str) -> None:
    alice, _, bob, _ = alice_bob
    with acting_as(pg_conn, "service_role"):
        assert owners(pg_conn, table) >= {alice, bob}


def test_realtime_publication_holds_the_progress_tables(pg_conn: Conn) -> None:
    rows = pg_conn.execute(
        "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'"
    ).fetchall()
    assert sorted(rows) == [("public", "run_events"), ("public", "runs"), ("public", "step_runs")]


def test_deleting_a_user_deletes_their_rows(pg_conn: Conn, alice_bob: Any) -> None:
    alice, _, bob, _ = alice_bob
    pg_conn.execute("delete from auth.users where id = %s", (alice,))
    for table in TABLES:
        query = sql.SQL("select count(*) from {} where owner_id = %s").format(sql.Identifier(table))
        assert pg_conn.execute(query, (alice,)).fetchone() == (0,)
        assert owners(pg_conn, table) >= {bob}


def test_deleting_a_workflow_keeps_its_runs(pg_conn: Conn, alice_bob: Any) -> None:
    alice, rows, _, _ = alice_bob
    with acting_as(pg_conn, "authenticated", alice):
        pg_conn.execute("delete from workflows where id = %s", (rows["workflow"],))
        run = pg_conn.execute("select owner_id::text, workflow_id from runs where id = %s", (rows["run"],))
        assert run.fetchone() == (alice, None)


def test_idempotency_keys_are_unique_per_owner(pg_conn: Conn, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    insert = "insert into runs (owner_id, spec, idempotency_key) values (%s, '{}', %s)"
    pg_conn.execute(insert, (alice, "k1"))
    pg_conn.execute(insert, (bob, "k1"))  # another owner may reuse it
    pg_conn.execute(insert, (alice, None))
    pg_conn.execute(insert, (alice, None))  # no key, no constraint
    with pytest.raises(errors.UniqueViolation):
        pg_conn.execute(insert, (alice, "k1"))


def test_statuses_are_checked(pg_conn: Conn, make_user: Any) -> None:
    alice = make_user()
    with pytest.raises(errors.CheckViolation):
        pg_conn.execute("insert into runs (owner_id, spec, status) values (%s, '{}', 'done')", (alice,))
    with pytest.raises(errors.CheckViolation):
        pg_conn.execute("insert into runs (owner_id, spec, mode) values (%s, '{}', 'fast')", (alice,))


def test_auth_uid_reads_the_claims_like_supabase(pg_conn: Conn, make_user: Any) -> None:
    alice = make_user()
    with acting_as(pg_conn, "authenticated", alice):
        row = pg_conn.execute("select auth.uid()::text, auth.role(), auth.jwt() ->> 'sub'").fetchone()
        assert row == (alice, "authenticated", alice)
    with pg_conn.transaction(force_rollback=True):  # the legacy per-claim setting
        pg_conn.execute("select set_config('request.jwt.claim.sub', %s, true)", (alice,))
        assert pg_conn.execute("select auth.uid()::text").fetchone() == (alice,)
    # After those transactions the settings read as '': still no user, and no error.
    assert pg_conn.execute("select auth.uid()").fetchone() == (None,)
