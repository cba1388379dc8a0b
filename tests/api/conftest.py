"""The API against the real app: real Postgres (RLS on), the mock model and an
in-process worker, called through httpx's ASGI transport."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

from orchestrate.api import Services, create_app, local_stack
from orchestrate.llm import MockProvider
from orchestrate.settings import Settings

SECRET = "orchestrate-test-secret-" + "0123456789abcdef" * 3  # 72 bytes: enough for HS512 too
YAML = "application/yaml"

HELLO = """\
name: Hello
description: Two steps, the second reading the first
inputs:
  who: {type: string, description: Whom to greet}
  times: {type: integer, default: 1}
steps:
  - id: greet
    prompt: "Say hello to {{ inputs.who }}"
  - id: shout
    prompt: "Shout this: {{ steps.greet.output }}"
"""


def make_token(user_id: str, *, secret: str = SECRET, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


def bearer(user_id: str, **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(user_id, **overrides)}"}


@pytest.fixture(scope="session")
def api_settings() -> Settings:
    return Settings(supabase_jwt_secret=SECRET, use_mock=True, mock_delay=0.0)


@pytest.fixture(scope="session")
async def stack(pg_url: str) -> AsyncIterator[Services]:
    async with local_stack(pg_url, MockProvider(0.0), sweep=False) as services:
        yield services


@pytest.fixture(scope="session")
def app(api_settings: Settings, stack: Services) -> Any:
    return create_app(api_settings, services=stack)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
        yield c


@pytest.fixture
def user(make_user: Callable[..., str]) -> str:
    return make_user()


@pytest.fixture
def auth(user: str) -> dict[str, str]:
    return bearer(user)


async def create_workflow(client: httpx.AsyncClient, headers: dict[str, str], source: str = HELLO) -> dict[str, Any]:
    response = await client.post("/v1/workflows", content=source, headers={**headers, "Content-Type": YAML})
    assert response.status_code == 201, response.text
    return response.json()


async def wait_finished(client: httpx.AsyncClient, headers: dict[str, str], run_id: str) -> dict[str, Any]:
    """Follow the run's events (long-poll) until it has finished; return the run."""
    after = 0
    for _ in range(100):
        response = await client.get(f"/v1/runs/{run_id}/events", params={"after": after, "wait": 5}, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        after = page["next_after"]
        if page["finished"]:
            break
    run = await client.get(f"/v1/runs/{run_id}", headers=headers)
    return run.json()
