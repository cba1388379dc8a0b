"""The engine's tests run on every store: one suite, memory and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from orchestrate.engine.memory import MemoryStore
from orchestrate.engine.store import Store


@dataclass
class Env:
    store: Store
    owner: str | None  # the user who owns the runs (Postgres rows need one)


@pytest.fixture(params=["memory", "postgres"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "memory":
        yield Env(MemoryStore(), None)
        return
    from orchestrate.db.store import PostgresStore

    # Only the Postgres half asks for the database, so memory-only runs need none.
    store = await PostgresStore.open(request.getfixturevalue("pg_url"), max_size=20)
    try:
        yield Env(store, request.getfixturevalue("make_user")())
    finally:
        await store.close()
