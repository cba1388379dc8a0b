"""The Studio's files at `/`: the built app with its caching and security headers, a
one-line hint without a build, and the API's own paths never shadowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrate.api import create_app
from orchestrate.api.studio import NOT_BUILT
from orchestrate.settings import Settings

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head><body><div id="root"></div></body></html>'


@pytest.fixture
def build(tmp_path: Path) -> Path:
    dist = tmp_path / "studio_dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log('studio')")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return dist


async def _client(api_settings: Settings, stack: Any, directory: Path) -> httpx.AsyncClient:
    app = create_app(api_settings, services=stack, studio_dir=directory)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


@pytest.fixture
async def built(api_settings: Settings, stack: Any, build: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(api_settings, stack, build) as client:
        yield client


async def test_root_serves_the_app_with_a_strict_policy(built: httpx.AsyncClient) -> None:
    response = await built.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_assets_are_served_with_a_long_cache(built: httpx.AsyncClient) -> None:
    response = await built.get("/assets/index-abc123.js")
    assert response.status_code == 200
    assert response.text == "console.log('studio')"
    assert "javascript" in response.headers["content-type"]
    assert "immutable" in response.headers["cache-control"]


async def test_client_routes_fall_back_to_the_app(built: httpx.AsyncClient) -> None:
    for path in ("/workflows", "/runs/6d91ba67-46b1-4961-bb31-74b5d70e2e3c"):
        response = await built.get(path)
        assert response.status_code == 200 and response.text == INDEX, path
    assert (await built.get("/favicon.svg")).text == "<svg/>"


@pytest.mark.parametrize("path", ["/assets/missing.js", "/missing.png", "/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt"])
async def test_missing_or_outside_files_are_a_404_problem(built: httpx.AsyncClient, path: str) -> None:
    response = await built.get(path)
    assert response.status_code == 404, response.text
    assert "outside the build" not in response.text
    if response.headers["content-type"].startswith("application/problem+json"):
        assert response.json()["type"] == "not-found"


async def test_the_api_paths_are_never_shadowed(built: httpx.AsyncClient, auth: dict[str, str]) -> None:
    missing = await built.get("/v1/no-such-thing", headers=auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert (await built.get("/openapi.json")).json()["info"]["title"] == "Orchestrate"
    assert "swagger" in (await built.get("/docs")).text.lower()
    assert (await built.get("/v1/health")).json()["status"] == "ok"
    # Other methods outside the API are not the app's either.
    posted = await built.post("/workflows", json={})
    assert posted.status_code in (404, 405) and posted.headers["content-type"].startswith("application/problem+json")


async def test_without_a_build_the_root_says_how_to_build_it(api_settings: Settings, stack: Any, tmp_path: Path) -> None:
    async with await _client(api_settings, stack, tmp_path / "not-built") as client:
        for path in ("/", "/workflows"):
            response = await client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/html")
            assert NOT_BUILT in response.text
        assert (await client.get("/assets/index.js")).status_code == 404


async def test_the_studio_is_not_in_the_api_schema(built: httpx.AsyncClient) -> None:
    paths = (await built.get("/openapi.json")).json()["paths"]
    assert all(path.startswith("/v1/") for path in paths)
