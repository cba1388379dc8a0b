"""Odd but legal JSON and YAML, sent to every endpoint that accepts a body, and rows
written around the API (the Data API lets their owner): always a located 4xx
problem, never a 5xx. Real app, real Postgres."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute
from psycopg import errors

from orchestrate.api.jsonbody import StrictJsonRoute
from tests.hostile_documents import RUN_BODIES, WORKFLOWS
from tests.postgres_fixtures import acting_as

from .conftest import YAML, bearer

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


def test_every_route_reads_json_with_the_strict_parser(app: Any) -> None:
    """A router added later must use StrictJsonRoute too, or its bodies skip the checks."""

    def api_routes(routes: list[Any]) -> list[APIRoute]:
        found: list[APIRoute] = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):  # an included router
                found += api_routes(route.original_router.routes)
        return found

    routes = api_routes(app.routes)
    assert len(routes) >= 15 and [r.path for r in routes if not isinstance(r, StrictJsonRoute)] == []


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


# Rows the owner writes through the Data API (as the `authenticated` role, RLS on).


def test_the_database_refuses_a_workflow_spec_that_is_not_an_object(pg_conn: psycopg.Connection[Any], make_user: Callable[[], str]) -> None:
    user = make_user()
    with acting_as(pg_conn, "authenticated", user):
        for spec in ("[]", '"text"', "1", "null"):
            with pytest.raises(errors.CheckViolation, match="workflows_spec_is_object"), pg_conn.transaction():
                pg_conn.execute("insert into public.workflows (owner_id, name, spec) values (%s, 'x', %s::jsonb)", (user, spec))
        with pytest.raises(errors.CheckViolation, match="workflows_name_length"), pg_conn.transaction():
            pg_conn.execute("insert into public.workflows (owner_id, name, spec) values (%s, '', '{}')", (user,))


def _write_row(pg_conn: psycopg.Connection[Any], user: str, spec: str, *, before_the_checks: bool = False) -> str:
    """A workflows row written by its owner through the Data API; ``before_the_checks``:
    as if written before the database checked the shape (the constraints are NOT VALID)."""
    with pg_conn.transaction():
        if before_the_checks:
            pg_conn.execute("alter table public.workflows drop constraint workflows_spec_is_object")
        # As the Data API does it, but committed (acting_as rolls back).
        pg_conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": user, "role": "authenticated"}),))
        pg_conn.execute("set local role authenticated")
        row = pg_conn.execute("insert into public.workflows (owner_id, name, spec) values (%s, 'direct', %s::jsonb) returning id::text", (user, spec)).fetchone()
        pg_conn.execute("reset role")
        if before_the_checks:
            pg_conn.execute("alter table public.workflows add constraint workflows_spec_is_object check (jsonb_typeof(spec) = 'object') not valid")
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    ("name", "spec", "old"),
    [
        ("an-array", "[1, 2]", True),
        ("a-string", '"name: x"', True),
        ("a-number-past-float-range", '{"name": "x", "version": 1e400, "steps": [{"id": "a", "prompt": "p"}]}', False),
        ("an-integer-of-5000-digits", '{"name": "x", "steps": [{"id": "a", "prompt": "p", "timeout": 1' + "0" * 5000 + "}]}", False),
    ],
)
async def test_an_unusable_row_is_a_422_naming_it(
    client: httpx.AsyncClient, pg_conn: psycopg.Connection[Any], user: str, auth: dict[str, str], name: str, spec: str, old: bool
) -> None:
    workflow_id = _write_row(pg_conn, user, spec, before_the_checks=old)
    for method, url, body in (("GET", f"/v1/workflows/{workflow_id}", None), ("POST", f"/v1/workflows/{workflow_id}/runs", {})):
        response = await client.request(method, url, json=body, headers=auth)
        problem = assert_located(response, "spec")
        assert response.status_code == 422 and problem["type"] == "invalid-stored-workflow"
        assert workflow_id in problem["detail"] and "PUT" in problem["detail"]
    listed = await client.get("/v1/workflows", headers=auth)  # the list still answers, with the row in it
    assert listed.status_code == 200 and workflow_id in [w["id"] for w in listed.json()["items"]]
    fixed = await client.put(f"/v1/workflows/{workflow_id}", content=TARGET, headers={**auth, "Content-Type": YAML})
    assert fixed.status_code == 200, fixed.text
    assert (await client.get(f"/v1/workflows/{workflow_id}", headers=auth)).status_code == 200


async def test_an_object_row_that_is_not_a_workflow_is_shown_but_cannot_run(
    client: httpx.AsyncClient, pg_conn: psycopg.Connection[Any], user: str, auth: dict[str, str]
) -> None:
    workflow_id = _write_row(pg_conn, user, '{"name": "x", "steps": "none"}')
    shown = await client.get(f"/v1/workflows/{workflow_id}", headers=auth)
    assert shown.status_code == 200 and shown.json()["spec"] == {"name": "x", "steps": "none"}
    started = await client.post(f"/v1/workflows/{workflow_id}/runs", json={}, headers=auth)
    problem = assert_located(started, "steps")
    assert started.status_code == 422 and problem["type"] == "invalid-stored-workflow" and workflow_id in problem["detail"]


async def test_another_users_token_cannot_see_the_row(client: httpx.AsyncClient, pg_conn: psycopg.Connection[Any], user: str, make_user: Callable[[], str]) -> None:
    workflow_id = _write_row(pg_conn, user, "[]", before_the_checks=True)
    other = await client.get(f"/v1/workflows/{workflow_id}", headers=bearer(make_user()))
    assert other.status_code == 404
