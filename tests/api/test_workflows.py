"""Workflows: create from YAML or JSON, validate, list with cursors, get, update, delete."""

from __future__ import annotations

import json

import httpx

from .conftest import HELLO, YAML, create_workflow

PROBLEM = "application/problem+json"

BROKEN = """\
name: Broken
steps:
  - id: first
    prompt: "Uses {{ steps.nowhere.output }}"
  - id: first
    prompt: ""
  - id: third
    prompt: hi
    temperature: 9
"""


async def test_create_from_raw_yaml_and_from_json(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await create_workflow(client, auth)
    assert created["name"] == "Hello" and created["version"] == 1 and created["source"] == HELLO
    assert [s["id"] for s in created["spec"]["steps"]] == ["greet", "shout"]

    response = await client.post("/v1/workflows", json={"source": HELLO}, headers=auth)
    assert response.status_code == 201
    assert response.headers["location"] == f"/v1/workflows/{response.json()['id']}"
    got = await client.get(response.headers["location"], headers=auth)
    assert got.status_code == 200 and got.json()["name"] == "Hello"


async def test_invalid_yaml_answers_422_with_every_problem_and_its_line(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/workflows", content=BROKEN, headers={**auth, "Content-Type": YAML})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "invalid-workflow" and body["status"] == 422
    located = {(e["path"], e["line"]) for e in body["errors"]}
    assert located == {("steps[0].prompt", 4), ("steps[1].id", 5), ("steps[1].prompt", 6), ("steps[2].temperature", 9)}
    assert all(e["message"] and e["column"] for e in body["errors"])

    syntax = await client.post("/v1/workflows", json={"source": "name: x\nsteps: [\n  - id: a\n"}, headers=auth)
    assert syntax.status_code == 422 and syntax.json()["errors"][0]["line"] is not None


async def test_validate_reports_problems_and_stores_nothing(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    bad = await client.post("/v1/workflows/validate", content=BROKEN, headers={**auth, "Content-Type": "text/yaml"})
    assert bad.status_code == 200
    assert bad.json()["valid"] is False and all(e["line"] for e in bad.json()["errors"])
    good = await client.post("/v1/workflows/validate", json={"source": HELLO}, headers=auth)
    assert good.json() == {
        "valid": True,
        "name": "Hello",
        "steps": ["greet", "shout"],
        "inputs": {"who": {"type": "string", "description": "Whom to greet"}, "times": {"type": "integer", "default": 1}},
        "errors": [],
    }
    listed = await client.get("/v1/workflows", headers=auth)
    assert listed.json()["items"] == []


async def test_list_pages_with_an_opaque_cursor(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    ids = [(await create_workflow(client, auth, HELLO.replace("Hello", f"Hello {i}")))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/workflows", params=params, headers=auth)).json()
        seen += [w["id"] for w in page["items"]]
        assert "source" not in page["items"][0]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each once


async def test_update_bumps_the_version_and_delete_removes(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await create_workflow(client, auth)
    url = f"/v1/workflows/{created['id']}"
    updated = await client.put(url, content=HELLO.replace("Hello", "Howdy"), headers={**auth, "Content-Type": YAML})
    assert updated.status_code == 200
    assert updated.json()["name"] == "Howdy" and updated.json()["version"] == 2
    invalid = await client.put(url, content=BROKEN, headers={**auth, "Content-Type": YAML})
    assert invalid.status_code == 422
    assert (await client.get(url, headers=auth)).json()["name"] == "Howdy"
    assert (await client.delete(url, headers=auth)).status_code == 204
    gone = await client.get(url, headers=auth)
    assert gone.status_code == 404 and gone.json()["type"] == "not-found"
    assert (await client.delete(url, headers=auth)).status_code == 404


async def test_bad_input_is_a_4xx_problem(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    cases = [
        ("POST", "/v1/workflows", {"json": {"source": HELLO, "extra": 1}}, 422, "invalid-request"),
        ("POST", "/v1/workflows", {"json": {"source": 42}}, 422, "invalid-request"),
        ("POST", "/v1/workflows", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "invalid-request"),
        ("POST", "/v1/workflows", {"content": b"\xff\xfe", "headers": {"Content-Type": YAML}}, 422, "invalid-request"),
        ("POST", "/v1/workflows", {"content": HELLO, "headers": {"Content-Type": "text/csv"}}, 415, "unsupported-media-type"),
        ("GET", "/v1/workflows?cursor=not-a-cursor", {}, 400, "invalid-cursor"),
        ("GET", "/v1/workflows?cursor=WzEsMl0", {}, 400, "invalid-cursor"),  # base64 of [1,2]
        ("GET", "/v1/workflows?limit=0", {}, 422, "invalid-request"),
        ("GET", "/v1/workflows/not-a-uuid", {}, 422, "invalid-request"),
        ("DELETE", "/v1/workflows/123", {}, 422, "invalid-request"),
        ("GET", "/v1/nowhere", {}, 404, "not-found"),
        ("PATCH", "/v1/workflows", {}, 405, "method-not-allowed"),
    ]
    for method, url, kwargs, status, slug in cases:
        headers = {**auth, **kwargs.pop("headers", {})}
        response = await client.request(method, url, headers=headers, **kwargs)
        assert response.status_code == status, (method, url, response.text)
        assert response.headers["content-type"] == PROBLEM, (method, url)
        body = response.json()
        assert body["type"] == slug and body["status"] == status and body["detail"], (method, url, body)


async def test_oversize_bodies_answer_413(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    huge = "name: x\n" + "# padding\n" * 120_000
    response = await client.post("/v1/workflows", content=huge, headers={**auth, "Content-Type": YAML})
    assert response.status_code == 413 and response.json()["type"] == "payload-too-large"

    async def chunks():  # no Content-Length: the cap applies while streaming
        for _ in range(40):
            yield b"x" * 65536

    streamed = await client.post("/v1/workflows", content=chunks(), headers={**auth, "Content-Type": YAML})
    assert streamed.status_code == 413 and streamed.headers["content-type"] == PROBLEM
    inline = await client.post("/v1/runs", content=json.dumps({"source": huge}), headers={**auth, "Content-Type": "application/json"})
    assert inline.status_code == 413


async def test_control_characters_are_a_located_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/workflows", json={"source": "name: ok\nsteps:\n  - id: a\n    prompt: x\u0096y\n"}, headers=auth)
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 4 and response.json()["errors"][0]["column"] == 14
