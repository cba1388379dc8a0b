"""Sessions from Supabase Auth (the GoTrue stand-in, tests/fakes/gotrue_server.py, over
real HTTP): the API accepts the access tokens it issues for users of the database, and
the session rules the Studio relies on hold: refresh tokens rotate and work once, a
reuse ends the session, sign-out ends it, wrong credentials are refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from orchestrate.api import Services, create_app
from orchestrate.settings import Settings
from tests.fakes.gotrue_server import GoTrueServer

from .conftest import SECRET

pytestmark = pytest.mark.postgres

KEY = "sb_publishable_auth_test"
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def gotrue(pg_url: str) -> Iterator[GoTrueServer]:
    with GoTrueServer(pg_url, SECRET, {KEY}).running() as server:
        yield server


@pytest.fixture
async def api(gotrue: GoTrueServer, stack: Services) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(supabase_url=gotrue.url, supabase_jwt_secret=SECRET, supabase_publishable_key=KEY)
    transport = httpx.ASGITransport(app=create_app(settings, services=stack))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


def grant(gotrue: GoTrueServer, kind: str, body: dict[str, Any], key: str = KEY) -> httpx.Response:
    return httpx.post(f"{gotrue.url}/auth/v1/token", params={"grant_type": kind}, json=body, headers={"apikey": key})


def new_user(gotrue: GoTrueServer) -> str:
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    gotrue.create_user(email, PASSWORD)
    return email


async def test_the_api_accepts_the_projects_tokens(gotrue: GoTrueServer, api: httpx.AsyncClient) -> None:
    session = grant(gotrue, "password", {"email": new_user(gotrue), "password": PASSWORD}).json()
    response = await api.get("/v1/workflows", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert response.status_code == 200, response.text
    assert (await api.get("/v1/config")).json()["auth_mode"] == "supabase"  # a local project still signs in through Auth


def test_refresh_tokens_rotate_and_a_reused_one_ends_the_session(gotrue: GoTrueServer) -> None:
    first = grant(gotrue, "password", {"email": new_user(gotrue), "password": PASSWORD}).json()
    second = grant(gotrue, "refresh_token", {"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = grant(gotrue, "refresh_token", {"refresh_token": first["refresh_token"]})
    assert (reused.status_code, reused.json()["code"]) == (400, "refresh_token_already_used")
    # Reuse means a leak: the newer token is refused too, and the user endpoint says so.
    assert grant(gotrue, "refresh_token", {"refresh_token": second.json()["refresh_token"]}).status_code == 400
    user = httpx.get(f"{gotrue.url}/auth/v1/user", headers={"apikey": KEY, "Authorization": f"Bearer {second.json()['access_token']}"})
    assert (user.status_code, user.json()["code"]) == (403, "session_not_found")


def test_sign_out_ends_the_session(gotrue: GoTrueServer) -> None:
    session = grant(gotrue, "password", {"email": new_user(gotrue), "password": PASSWORD}).json()
    auth = {"apikey": KEY, "Authorization": f"Bearer {session['access_token']}"}
    assert httpx.get(f"{gotrue.url}/auth/v1/user", headers=auth).json()["email"] == session["user"]["email"]
    assert httpx.post(f"{gotrue.url}/auth/v1/logout", params={"scope": "local"}, headers=auth).status_code == 204
    assert grant(gotrue, "refresh_token", {"refresh_token": session["refresh_token"]}).status_code == 400
    assert httpx.get(f"{gotrue.url}/auth/v1/user", headers=auth).status_code == 403


def test_wrong_credentials_and_a_missing_apikey_are_refused(gotrue: GoTrueServer) -> None:
    email = new_user(gotrue)
    wrong = grant(gotrue, "password", {"email": email, "password": "not it"})
    assert (wrong.status_code, wrong.json()) == (400, {"code": "invalid_credentials", "message": "Invalid login credentials"})
    nobody = grant(gotrue, "password", {"email": "nobody@example.test", "password": PASSWORD})
    assert nobody.status_code == 400
    assert grant(gotrue, "password", {"email": email, "password": PASSWORD}, key="sb_publishable_other").status_code == 401
