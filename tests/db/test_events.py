"""run_events.seq: gapless and ordered per run, whoever appends concurrently."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres

Conn = psycopg.Connection[Any]


def new_run(conn: Conn, owner: str) -> str:
    return conn.execute("insert into runs (owner_id, spec) values (%s, '{}') returning id::text", (owner,)).fetchone()[0]


APPEND = "select orchestrate.append_events(%s, (select owner_id from runs where id = %s), %s::jsonb)"


def append(conn: Conn, run: str, type_: str, data: str | None = None) -> int:
    """Append one event as the service does; returns its seq."""
    event = {"type": type_, "step_id": "a"} | ({"data": json.loads(data)} if data is not None else {})
    return int(conn.execute(APPEND, (run, run, json.dumps([event]))).fetchone()[0])


def test_concurrent_appends_get_gapless_ordered_seqs(pg_url: str, pg_conn: Conn, make_user: Any) -> None:
    run = new_run(pg_conn, make_user())
    writers, per_writer = 8, 25
    got: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                start.wait()
                for i in range(per_writer):
                    seq = append(conn, run, "step.progress", f'{{"writer": {n}, "i": {i}}}')
                    with lock:
                        got.append(seq)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    total = writers * per_writer
    assert sorted(got) == list(range(1, total + 1))
    stored = [row[0] for row in pg_conn.execute("select seq from run_events where run_id = %s order by seq", (run,))]
    assert stored == list(range(1, total + 1))
    assert pg_conn.execute("select last_seq from runs where id = %s", (run,)).fetchone() == (total,)
    # Each writer's own events are in the order it wrote them.
    rows = pg_conn.execute(
        "select (data->>'writer')::int, (data->>'i')::int from run_events where run_id = %s order by seq", (run,)
    ).fetchall()
    for n in range(writers):
        assert [i for w, i in rows if w == n] == list(range(per_writer))


def test_events_of_separate_runs_count_separately(pg_conn: Conn, make_user: Any) -> None:
    owner = make_user()
    first, second = new_run(pg_conn, owner), new_run(pg_conn, owner)
    seqs = [append(pg_conn, run, "x") for run in (first, second, first)]
    assert seqs == [1, 1, 2]


def test_an_event_rolled_back_leaves_no_gap(pg_conn: Conn, make_user: Any) -> None:
    run = new_run(pg_conn, make_user())
    with pg_conn.transaction(force_rollback=True):
        append(pg_conn, run, "lost")
    assert append(pg_conn, run, "kept") == 1


def test_event_data_defaults_to_an_empty_object(pg_conn: Conn, make_user: Any) -> None:
    run = new_run(pg_conn, make_user())
    append(pg_conn, run, "x")
    row = pg_conn.execute("select data, owner_id = (select owner_id from runs where id = %s) from run_events where run_id = %s", (run, run))
    assert row.fetchone() == ({}, True)
