"""Handled conditions are one log line naming what they hit, not a traceback: a
database connection lost under a step being processed, and under an API request."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from orchestrate.api import create_app, local_stack
from orchestrate.llm import ChatRequest, Completion, MockProvider
from orchestrate.settings import Settings

from .conftest import HELLO, bearer

pytestmark = pytest.mark.postgres


async def cut_connections(server_url: str, application_name: str) -> int:
    """What a database restart looks like to the app: its connections are closed."""
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        cur = await conn.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = %s", (application_name,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


class CuttingProvider:
    """The mock model, which closes the app's database connections during its first call."""

    def __init__(self, server_url: str, application_name: str) -> None:
        self.server_url, self.application_name = server_url, application_name
        self.mock = MockProvider(0.0)
        self.cut = asyncio.Event()

    async def complete(self, request: ChatRequest) -> Completion:
        if not self.cut.is_set():
            assert await cut_connections(self.server_url, self.application_name) > 0
            self.cut.set()
        return await self.mock.complete(request)


async def test_a_lost_connection_is_one_line_with_the_run_and_step(
    pg_url: str, api_settings: Settings, make_user: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    name = f"orchestrate-logs-{uuid.uuid4().hex[:8]}"
    provider = CuttingProvider(pg_url, name)
    caplog.set_level(logging.INFO, logger="orchestrate")
    async with local_stack(make_conninfo(pg_url, application_name=name), provider, sweep=False, max_size=2) as services:
        app = create_app(api_settings, services=services)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=bearer(make_user())) as http:
            run = (await http.post("/v1/runs", json={"source": HELLO, "inputs": {"who": "logs"}})).json()["id"]
            async with asyncio.timeout(60):
                while not any("re-drives it" in r.getMessage() for r in caplog.records):
                    await asyncio.sleep(0.02)

            # The step's completion met a closed connection: one line, the run and step named.
            lost = [r for r in caplog.records if "re-drives it" in r.getMessage()]
            assert len(lost) == 1 and lost[0].levelname == "WARNING", caplog.text
            assert f"step {run}/greet: database unavailable" in lost[0].getMessage()

            # An API request meeting a closed connection: a 503 problem, and one line naming it.
            await cut_connections(pg_url, name)
            response = await http.get(f"/v1/runs/{run}")
            assert response.status_code == 503 and response.json()["type"] == "database-unavailable"
            request_lines = [r for r in caplog.records if f"GET /v1/runs/{run}:" in r.getMessage()]
            assert len(request_lines) == 1 and "database unavailable" in request_lines[0].getMessage(), caplog.text

    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records), caplog.text
    assert "Traceback" not in caplog.text
