"""PostgreSQL for the tests: a real server, started once per session.

``TEST_DATABASE_URL`` (a superuser URL of any PostgreSQL, e.g. ``supabase start``'s)
is used if set; otherwise an embedded PostgreSQL runs in a temporary folder. Each
session gets a fresh database with the migrations applied (``pg_url``); tests that
need an untouched database ask ``make_database``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at another database of the same server."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path=f"/{dbname}"))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def create_database(server_url: str, prefix: str = "orchestrate_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def create_user(conn: psycopg.Connection[Any], email: str | None = None) -> str:
    """Insert a user into ``auth.users`` (committed) and return its id."""
    user_id = str(uuid.uuid4())
    with conn.transaction():
        conn.execute(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s)",
            (user_id, email or f"{user_id}@example.test"),
        )
    return user_id


@contextmanager
def acting_as(conn: psycopg.Connection[Any], role: str, user_id: str | None = None) -> Iterator[None]:
    """Run the block as an API role, the way Supabase does per request: role and
    JWT claims set for one transaction, which is rolled back at the end."""
    with conn.transaction(force_rollback=True):
        if user_id is not None:
            claims = json.dumps({"sub": user_id, "role": role, "aud": role})
            conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        yield


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A superuser URL of the server's ``postgres`` database."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from orchestrate.db.embedded import start_embedded

    folder = Path(tempfile.mkdtemp(prefix="orchestrate-pg-"))
    server = start_embedded(folder / "data", database="postgres", durable=False)
    try:
        yield server.conninfo
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database for this session, migrated, as the superuser."""
    from orchestrate.db.migrate import migrate

    url = create_database(pg_server_url)
    try:
        migrate(url)
        yield url
    finally:
        drop_database(pg_server_url, url)


@pytest.fixture
def make_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Factory of empty databases (nothing applied), dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(create_database(pg_server_url))
        return made[-1]

    yield make
    for url in made:
        drop_database(pg_server_url, url)


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the session database as the superuser (which
    bypasses RLS: use ``acting_as`` to act as a user)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def make_user(pg_conn: psycopg.Connection[Any]) -> Callable[..., str]:
    """``make_user(email=None) -> user id``: a new row in ``auth.users``."""
    return lambda email=None: create_user(pg_conn, email)
