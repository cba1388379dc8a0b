"""POST /v1/runs/{id}/export with `store: true`: the export saved in a Storage bucket
through the S3-compatible endpoint (moto's S3 server, the real boto3), answered with a
time-limited download URL."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import boto3
import httpx
import pytest

from orchestrate.api import Services, create_app
from orchestrate.settings import Settings

from .conftest import SECRET, bearer, create_workflow, wait_finished

pytestmark = pytest.mark.postgres

KEYS = {"storage_access_key_id": "test", "storage_secret_access_key": "test"}  # what moto accepts


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"results-{uuid.uuid4().hex[:8]}"
    s3(s3_endpoint).create_bucket(Bucket=name)
    return name


def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


async def client_for(settings: Settings, stack: Services) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, services=stack)), base_url="http://api.test")


@pytest.fixture
async def stored(s3_endpoint: str, bucket: str, stack: Services) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(supabase_jwt_secret=SECRET, storage_s3_endpoint=s3_endpoint, storage_bucket=bucket, **KEYS)  # type: ignore[arg-type]
    async with await client_for(settings, stack) as c:
        yield c


async def finished_run(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    wf = await create_workflow(client, auth)
    run = (await client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {"who": "Storage"}}, headers=auth)).json()
    assert (await wait_finished(client, auth, run["id"]))["status"] == "succeeded"
    return str(run["id"])


@pytest.mark.parametrize("fmt", ["md", "json"])
async def test_the_stored_file_is_the_plain_export(stored: httpx.AsyncClient, s3_endpoint: str, bucket: str, user: str, fmt: str) -> None:
    auth = bearer(user)
    run_id = await finished_run(stored, auth)
    response = await stored.post(f"/v1/runs/{run_id}/export", json={"format": fmt, "store": True}, headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["key"] == f"{user}/runs/{run_id}.{fmt}" and body["format"] == fmt
    plain = await stored.get(f"/v1/runs/{run_id}/export", params={"format": fmt}, headers=auth)
    assert plain.status_code == 200
    # The URL works without any credential, and serves exactly the plain export.
    download = httpx.get(body["url"], timeout=10)
    assert download.status_code == 200
    assert download.content == plain.content and body["bytes"] == len(plain.content)
    assert "X-Amz-Expires" in body["url"] and "X-Amz-Signature" in body["url"]
    stored_object = s3(s3_endpoint).get_object(Bucket=bucket, Key=body["key"])
    assert stored_object["Body"].read() == plain.content
    assert stored_object["ContentType"].startswith(plain.headers["content-type"].split(";")[0])


async def test_another_users_run_is_neither_stored_nor_readable(stored: httpx.AsyncClient, s3_endpoint: str, bucket: str, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    run_id = await finished_run(stored, bearer(alice))
    mine = await stored.post(f"/v1/runs/{run_id}/export", json={"format": "md"}, headers=bearer(alice))
    assert mine.status_code == 201
    theirs = await stored.post(f"/v1/runs/{run_id}/export", json={"format": "md"}, headers=bearer(bob))
    assert theirs.status_code == 404 and theirs.headers["content-type"].startswith("application/problem+json")
    assert alice not in theirs.text and mine.json()["url"] not in theirs.text
    keys = [o["Key"] for o in s3(s3_endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any(k.startswith(f"{bob}/") for k in keys)  # nothing written for bob
    assert all(k.split("/")[0] != bob for k in keys)


async def test_a_service_without_a_bucket_says_so_clearly(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run_id = await finished_run(client, auth)
    response = await client.post(f"/v1/runs/{run_id}/export", json={"format": "md", "store": True}, headers=auth)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("storage-not-configured")
    assert (await client.get("/v1/config")).json()["stored_exports"] is False
    plain = await client.get(f"/v1/runs/{run_id}/export", params={"format": "md"}, headers=auth)
    assert plain.status_code == 200 and plain.text.startswith("# Hello")


async def test_a_storage_outage_is_a_503_and_the_plain_export_keeps_working(stack: Services, bucket: str, user: str) -> None:
    with socket.socket() as sock:  # a port nothing listens on: Storage is down
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(supabase_jwt_secret=SECRET, storage_s3_endpoint=down, storage_bucket=bucket, **KEYS)  # type: ignore[arg-type]
    auth = bearer(user)
    async with await client_for(settings, stack) as c:
        run_id = await finished_run(c, auth)
        response = await c.post(f"/v1/runs/{run_id}/export", json={"format": "json"}, headers=auth)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("storage-unavailable") and "test" not in response.json()["detail"]
        plain = await c.get(f"/v1/runs/{run_id}/export", params={"format": "json"}, headers=auth)
        assert plain.status_code == 200 and plain.json()["id"] == run_id


async def test_a_bad_format_names_the_field(stored: httpx.AsyncClient, user: str) -> None:
    auth = bearer(user)
    run_id = await finished_run(stored, auth)
    response = await stored.post(f"/v1/runs/{run_id}/export", json={"format": "pdf", "store": True}, headers=auth)
    assert response.status_code == 422 and "format" in response.text
    response = await stored.post(f"/v1/runs/{run_id}/export", json={"format": "md", "store": False}, headers=auth)
    assert response.status_code == 422 and "store" in response.text  # the file itself: GET .../export
