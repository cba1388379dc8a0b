"""GET /v1/config: public, and never a secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrate.api import Services, create_app
from orchestrate.settings import Settings

from .conftest import SECRET

pytestmark = pytest.mark.postgres

SECRETS = {
    "jwt": SECRET,
    "storage_key": "storage-secret-access-key-0123456789",
    "storage_id": "storage-access-key-id-abcdef",
}


async def config_of(settings: Settings, stack: Services) -> httpx.Response:
    app = create_app(settings, services=stack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
        return await c.get("/v1/config")  # no Authorization header


async def test_a_local_server_says_local_without_supabase(stack: Services) -> None:
    response = await config_of(Settings(supabase_jwt_secret=SECRET), stack)
    assert response.status_code == 200
    assert response.json() == {"auth_mode": "local", "supabase": None, "realtime": False, "stored_exports": False}


async def test_a_hosted_project_gives_its_url_and_publishable_key_and_no_secret(stack: Services) -> None:
    settings = Settings(
        supabase_url="https://abcd.supabase.co",
        supabase_jwt_secret=SECRETS["jwt"],
        supabase_publishable_key="sb_publishable_abc",
        storage_s3_endpoint="https://abcd.supabase.co/storage/v1/s3",
        storage_bucket="results",
        storage_access_key_id=SECRETS["storage_id"],
        storage_secret_access_key=SECRETS["storage_key"],
    )
    response = await config_of(settings, stack)
    body: dict[str, Any] = response.json()
    assert body["auth_mode"] == "supabase"
    assert body["supabase"] == {"url": "https://abcd.supabase.co", "publishable_key": "sb_publishable_abc"}
    assert body["stored_exports"] is True
    assert body["realtime"] is False  # this database has no realtime schema: nothing is broadcast
    for name, value in SECRETS.items():
        assert value not in response.text, name
    assert "public" in response.headers["cache-control"]


async def test_stored_exports_need_the_whole_storage_configuration(stack: Services) -> None:
    partial = Settings(supabase_jwt_secret=SECRET, storage_s3_endpoint="http://127.0.0.1:1", storage_bucket="results")
    assert (await config_of(partial, stack)).json()["stored_exports"] is False
