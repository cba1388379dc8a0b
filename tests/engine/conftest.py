"""The engine's tests run on every store: one suite, memory and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrate.engine.memory import MemoryStore
from orchestrate.engine.store import Store


@pytest.fixture(params=["memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
