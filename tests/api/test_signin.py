"""One-time sign-in links: a code from `orchestrate serve` / `token --link` buys one
development token, once, within 10 minutes; anything else is a 401 problem."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from orchestrate.api import create_app
from orchestrate.db.signin import create_code
from orchestrate.settings import Settings

from .conftest import SECRET


async def _exchange(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post("/v1/auth/link", json={"code": code})


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "invalid-signin-code" and "orchestrate token --link" in problem["detail"]


async def test_a_code_signs_in_once(client: httpx.AsyncClient, pg_url: str, make_user: Callable[..., str]) -> None:
    user = make_user("ada@example.test")
    code = create_code(pg_url, user)
    response = await _exchange(client, code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == {"id": user, "email": "ada@example.test"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 24 * 3600
    # The token is the user's: it reaches their workflows, and only theirs.
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    created = await client.post("/v1/workflows", content="name: Mine\nsteps:\n  - {id: a, prompt: hi}\n", headers={**headers, "Content-Type": "application/yaml"})
    assert created.status_code == 201
    listed = (await client.get("/v1/workflows", headers=headers)).json()["items"]
    assert [w["name"] for w in listed] == ["Mine"]

    _refused(await _exchange(client, code))  # the link stops working after use


async def test_an_expired_or_unknown_code_is_refused(client: httpx.AsyncClient, pg_url: str, make_user: Callable[..., str]) -> None:
    expired = create_code(pg_url, make_user(), minutes=0)
    _refused(await _exchange(client, expired))
    _refused(await _exchange(client, "not-a-code-anyone-made"))
    empty = await _exchange(client, "")
    assert empty.status_code == 422 and empty.json()["type"] == "invalid-request"


async def test_two_exchanges_of_one_code_have_one_winner(client: httpx.AsyncClient, pg_url: str, make_user: Callable[..., str]) -> None:
    code = create_code(pg_url, make_user())
    answers = await asyncio.gather(*(_exchange(client, code) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]


async def test_only_a_hash_is_stored_and_no_api_role_reads_it(pg_conn: psycopg.Connection[Any], pg_url: str, make_user: Callable[..., str]) -> None:
    user = make_user()
    code = create_code(pg_url, user)
    stored = pg_conn.execute("select code_hash from orchestrate.signin_codes where user_id = %s", (user,)).fetchall()
    assert len(stored) == 1 and code not in stored[0][0]
    for role in ("authenticated", "anon"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), pg_conn.transaction(force_rollback=True):
            pg_conn.execute(f"set local role {role}")
            pg_conn.execute("select * from orchestrate.signin_codes")


async def test_a_hosted_project_has_no_sign_in_links(stack: Any, pg_url: str, make_user: Callable[..., str]) -> None:
    hosted = Settings(supabase_url="https://abcd.supabase.co", supabase_jwt_secret=SECRET)
    app = create_app(hosted, services=stack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        response = await _exchange(client, create_code(pg_url, make_user()))
    assert response.status_code == 404 and response.json()["type"] == "not-found"
