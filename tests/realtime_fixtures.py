"""A database that looks like a Supabase project's to the migrations: the Realtime
stand-in schema (tests/fakes/realtime_schema.sql) exists before they are applied, as it
does on Supabase, so the broadcast trigger and the Realtime Authorization policy are
installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres_fixtures import create_database, drop_database

REALTIME_SCHEMA = Path(__file__).parent / "fakes" / "realtime_schema.sql"


@pytest.fixture(scope="session")
def realtime_pg_url(pg_server_url: str, pg_url: str) -> Iterator[str]:
    """A fresh migrated database with the ``realtime`` schema (``pg_url`` first, so the
    cluster-wide API roles exist)."""
    from orchestrate.db.migrate import migrate

    url = create_database(pg_server_url, prefix="orchestrate_rt")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(REALTIME_SCHEMA.read_text(encoding="utf-8"))  # type: ignore[arg-type]
        migrate(url)
        yield url
    finally:
        drop_database(pg_server_url, url)
