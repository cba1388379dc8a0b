"""Broadcast from the database: each run event is sent to the private topic
``run:<run_id>`` in its own transaction, and only the run's owner may receive it
(Realtime Authorization through RLS on realtime.messages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.postgres_fixtures import acting_as, create_user

pytestmark = pytest.mark.postgres

Conn = psycopg.Connection[Any]
APPEND = "select orchestrate.append_events(%s, (select owner_id from runs where id = %s), %s::jsonb)"


def new_run(conn: Conn, owner: str) -> str:
    return str(conn.execute("insert into runs (owner_id, spec) values (%s, '{}') returning id::text", (owner,)).fetchone()[0])  # type: ignore[index]


def append(conn: Conn, run: str, *types: str) -> None:
    events = [{"type": t, "step_id": "a", "data": {"n": i}} for i, t in enumerate(types)]
    conn.execute(APPEND, (run, run, json.dumps(events)))


def visible_topic_rows(conn: Conn, user: str, topic: str) -> list[tuple[Any, ...]]:
    """What ``user`` may read of ``topic``: the query Realtime's join check makes, as
    the user (role authenticated, their claims), with ``realtime.topic()`` set."""
    with acting_as(conn, "authenticated", user):
        conn.execute("select set_config('realtime.topic', %s, true)", (topic,))
        return conn.execute(
            "select event, payload from realtime.messages where topic = realtime.topic() order by inserted_at, payload ->> 'seq'"
        ).fetchall()


@pytest.fixture
def rt_conn(realtime_pg_url: str) -> Iterator[Conn]:
    with psycopg.connect(realtime_pg_url, autocommit=True) as conn:
        yield conn


def test_plain_postgres_applies_and_broadcasts_nothing(pg_conn: Conn, make_user: Any) -> None:
    assert pg_conn.execute("select to_regnamespace('realtime')").fetchone() == (None,)
    assert pg_conn.execute("select orchestrate.enable_realtime_broadcast()").fetchone() == (False,)
    triggers = pg_conn.execute("select tgname from pg_trigger where tgrelid = 'public.run_events'::regclass and not tgisinternal").fetchall()
    assert triggers == []
    run = new_run(pg_conn, make_user())
    append(pg_conn, run, "run.started")  # appending works as before
    assert pg_conn.execute("select count(*) from run_events where run_id = %s", (run,)).fetchone() == (1,)


def test_each_event_is_broadcast_to_its_run_topic(rt_conn: Conn) -> None:
    owner = create_user(rt_conn)
    run = new_run(rt_conn, owner)
    append(rt_conn, run, "run.started", "step.started", "step.succeeded")
    rows = rt_conn.execute(
        "select topic, extension, event, private, payload from realtime.messages where topic = %s order by (payload ->> 'seq')::int",
        (f"run:{run}",),
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (f"run:{run}", "broadcast", "run.started", True),
        (f"run:{run}", "broadcast", "step.started", True),
        (f"run:{run}", "broadcast", "step.succeeded", True),
    ]
    first = rows[0][4]
    assert {k: first[k] for k in ("run_id", "seq", "type", "step_id", "data")} == {
        "run_id": run, "seq": 1, "type": "run.started", "step_id": "a", "data": {"n": 0},
    }
    assert "created_at" in first


def test_broadcast_shares_the_events_transaction(rt_conn: Conn) -> None:
    run = new_run(rt_conn, create_user(rt_conn))
    with rt_conn.transaction(force_rollback=True):
        append(rt_conn, run, "run.started")
        assert rt_conn.execute("select count(*) from realtime.messages where topic = %s", (f"run:{run}",)).fetchone() == (1,)
    # rolled back with the event: nothing announced that the log does not hold
    assert rt_conn.execute("select count(*) from realtime.messages where topic = %s", (f"run:{run}",)).fetchone() == (0,)


def test_only_the_owner_may_read_the_topic(rt_conn: Conn) -> None:
    alice, bob = create_user(rt_conn), create_user(rt_conn)
    run = new_run(rt_conn, alice)
    append(rt_conn, run, "run.started", "run.succeeded")
    topic = f"run:{run}"
    assert [r[0] for r in visible_topic_rows(rt_conn, alice, topic)] == ["run.started", "run.succeeded"]
    assert visible_topic_rows(rt_conn, bob, topic) == []
    # a topic naming no run, or not a run at all, is nobody's
    assert visible_topic_rows(rt_conn, alice, "run:00000000-0000-0000-0000-000000000000") == []
    assert visible_topic_rows(rt_conn, alice, "run:not-a-uuid'; --") == []
    # anon (a publishable key without a user) reads nothing
    with acting_as(rt_conn, "anon"):
        rt_conn.execute("select set_config('realtime.topic', %s, true)", (topic,))
        assert rt_conn.execute("select count(*) from realtime.messages").fetchone() == (0,)


def test_enabling_again_is_harmless(rt_conn: Conn) -> None:
    assert rt_conn.execute("select orchestrate.enable_realtime_broadcast()").fetchone() == (True,)
    assert rt_conn.execute("select orchestrate.enable_realtime_broadcast()").fetchone() == (True,)
    run = new_run(rt_conn, create_user(rt_conn))
    append(rt_conn, run, "run.started")
    assert rt_conn.execute("select count(*) from realtime.messages where topic = %s", (f"run:{run}",)).fetchone() == (1,)
