"""Odd but legal JSON and YAML, sent to every endpoint that accepts a body: always a
located 4xx problem, never a 5xx. Real app, real Postgres."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .conftest import YAML

from tests.hostile_documents import RUN_BODIES, WORKFLOWS

PROBLEM = "application/problem+json"
TARGET = """\
name: Target
inputs:
  who: {type: string}
  times: {type: integer, default: 1}
  extra: {type: object, default: {}}
steps:
  - id: greet
    prompt: "Hello {{ inputs.who }}"
"""


def assert_located(response: httpx.Response, path: str) -> dict[str, Any]:
    """A 4xx problem whose errors name ``path`` (or a field under it)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    paths = [e["path"] for e in problem.get("errors") or []]
    assert any(p == path or p.startswith((path + ".", path + "[")) for p in paths), (path, problem)
    return problem


@pytest.fixture
async def target(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    created = await client.post("/v1/workflows", content=TARGET, headers={**auth, "Content-Type": YAML})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def inline(body: str) -> str:
    """The same run body, with the workflow given inline."""
    return '{"source": ' + json.dumps(TARGET) + ", " + body.lstrip()[1:]


@pytest.mark.parametrize(("name", "body", "path"), RUN_BODIES, ids=[c[0] for c in RUN_BODIES])
async def test_hostile_run_bodies_are_located_4xx(client: httpx.AsyncClient, auth: dict[str, str], target: str, name: str, body: str, path: str) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    assert_located(await client.post(f"/v1/workflows/{target}/runs", content=body, headers=headers), path)
    assert_located(await client.post("/v1/runs", content=inline(body), headers=headers), path)
    # Nothing was started by any of them.
    listed = await client.get("/v1/runs", params={"workflow_id": target}, headers=auth)
    assert listed.status_code == 200 and listed.json()["items"] == []


@pytest.mark.parametrize(
    ("name", "body", "path"),
    [
        ("surrogate-in-source", '{"source": "name: x\\ud800"}', "body.source"),
        ("nul-in-source-key", '{"source\\u0000": "x"}', "body"),
        ("number-beside-source", '{"source": "name: x", "n": 1e400}', "body.n"),
        ("long-integer-beside-source", '{"source": "name: x", "n": ' + "9" * 5000 + "}", "body"),
        ("nan-as-source", '{"source": NaN}', "body"),
        ("not-utf8", b'{"source": "\xff"}'.decode("latin-1"), "body"),
    ],
)
async def test_hostile_workflow_bodies_are_located_4xx(client: httpx.AsyncClient, auth: dict[str, str], target: str, name: str, body: str, path: str) -> None:
    raw = body.encode("latin-1") if name == "not-utf8" else body.encode()
    headers = {**auth, "Content-Type": "application/json"}
    for method, url in (("POST", "/v1/workflows"), ("POST", "/v1/workflows/validate"), ("PUT", f"/v1/workflows/{target}")):
        assert_located(await client.request(method, url, content=raw, headers=headers), path)


@pytest.mark.parametrize(("name", "source", "path"), WORKFLOWS, ids=[c[0] for c in WORKFLOWS])
async def test_hostile_yaml_is_refused_at_its_place_everywhere(
    client: httpx.AsyncClient, auth: dict[str, str], target: str, name: str, source: str, path: str | None
) -> None:
    as_yaml = {"content": source.encode(), "headers": {**auth, "Content-Type": YAML}}
    as_json = {"json": {"source": source}, "headers": auth}
    validation = await client.post("/v1/workflows/validate", **as_json)
    assert validation.status_code == 200, validation.text
    if path is None:  # valid: stored, run, read back intact
        assert validation.json()["valid"] is True
        created = await client.post("/v1/workflows", **as_yaml)
        assert created.status_code == 201, created.text
        started = await client.post(f"/v1/workflows/{created.json()['id']}/runs", json={}, headers=auth)
        assert started.status_code == 202, started.text
        return
    result = validation.json()
    assert result["valid"] is False and any(e["path"] == path and e["line"] for e in result["errors"]), result
    for method, url, kwargs in (
        ("POST", "/v1/workflows", as_yaml),
        ("POST", "/v1/workflows", as_json),
        ("PUT", f"/v1/workflows/{target}", as_yaml),
        ("POST", "/v1/workflows/validate", as_yaml),
    ):
        response = await client.request(method, url, **kwargs)
        if url.endswith("/validate"):
            assert response.json()["valid"] is False
            continue
        problem = assert_located(response, path)
        assert problem["type"] == "invalid-workflow" and any(e["line"] for e in problem["errors"])
    assert_located(await client.post("/v1/runs", json={"source": source}, headers=auth), path)
    unchanged = await client.get(f"/v1/workflows/{target}", headers=auth)
    assert unchanged.json()["version"] == 1
