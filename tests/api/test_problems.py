"""No traceback ever reaches a client: unexpected errors are a generic 500 problem
(logged in full), a lost database a 503."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import psycopg
import pytest

from orchestrate.api import Services, create_app
from orchestrate.settings import Settings

from .conftest import SECRET


async def test_an_unexpected_error_is_a_generic_500_problem(stack: Services, auth: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(supabase_jwt_secret=SECRET), services=stack)

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        with caplog.at_level(logging.ERROR, logger="orchestrate.api"):
            response = await client.get("/v1/boom", headers=auth)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the server could not handle the request",
        "instance": "/v1/boom",
    }
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records)  # the operator sees it


async def test_a_database_that_cannot_be_reached_is_503(auth: dict[str, str]) -> None:
    @asynccontextmanager
    async def unreachable() -> AsyncIterator[Services]:
        raise psycopg.OperationalError("connection refused")
        yield  # pragma: no cover

    app = create_app(Settings(supabase_jwt_secret=SECRET), opener=unreachable)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        listed = await client.get("/v1/workflows", headers=auth)
        health = await client.get("/v1/health")
    assert listed.status_code == 503 and listed.json()["type"] == "database-unavailable"
    assert "refused" not in listed.text
    assert health.status_code == 503 and health.json()["type"] == "database-unavailable"


async def test_health_and_openapi_need_no_token(client: httpx.AsyncClient) -> None:
    health = await client.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["database"] == "ok"
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/v1/runs/{run_id}/events" in schema["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_a_token_whose_user_was_deleted_is_401_not_500(client: httpx.AsyncClient) -> None:
    import uuid

    from .conftest import bearer

    ghost = bearer(str(uuid.uuid4()))  # well signed, but no such user in auth.users
    assert (await client.get("/v1/workflows", headers=ghost)).json()["items"] == []
    created = await client.post("/v1/workflows", json={"source": "name: x\nsteps:\n  - id: a\n    prompt: hi\n"}, headers=ghost)
    assert created.status_code == 401 and created.json()["type"] == "invalid-token"
    assert (await client.get("/v1/webhook-secret", headers=ghost)).status_code == 401
