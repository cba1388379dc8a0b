"""What the Studio's editor and gallery read: the shipped templates, the language's
JSON Schema, and name search over the caller's workflows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from orchestrate.spec import json_schema

from .conftest import YAML, bearer

ROOT = Path(__file__).resolve().parents[2]


async def test_templates_are_the_shipped_examples(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.get("/v1/templates", headers=auth)
    assert response.status_code == 200
    items = response.json()["items"]
    examples = sorted(ROOT.glob("examples/*.yaml"))
    assert [t["id"] for t in items] == [p.stem for p in examples]
    for template, path in zip(items, examples, strict=True):
        assert template["source"] == path.read_text(encoding="utf-8")  # comments and layout kept
        assert template["name"] == yaml.safe_load(template["source"])["name"]
    launch = next(t for t in items if t["id"] == "launch_kit")
    assert launch["name"] == "Launch kit" and launch["description"]


async def test_every_template_saves_as_a_workflow(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for template in (await client.get("/v1/templates", headers=auth)).json()["items"]:
        saved = await client.post("/v1/workflows", json={"source": template["source"]}, headers=auth)
        assert saved.status_code == 201, (template["id"], saved.text)
        assert saved.json()["name"] == template["name"]


async def test_templates_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/templates")
    assert response.status_code == 401 and response.json()["type"] == "missing-token"


async def test_the_schema_is_public_and_cacheable(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    assert response.json() == json_schema()
    assert "max-age" in response.headers["cache-control"]
    again = await client.get("/v1/schema", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_search_finds_names_containing_the_words_in_any_case(client: httpx.AsyncClient, make_user: Callable[..., str]) -> None:
    auth = bearer(make_user())
    for name in ("Weekly report", "Launch kit", "Launch review", "50% off", "Report_card"):
        created = await client.post("/v1/workflows", content=f"name: {name}\nsteps:\n  - {{id: a, prompt: hi}}\n", headers={**auth, "Content-Type": YAML})
        assert created.status_code == 201, created.text
    other = bearer(make_user())
    await client.post("/v1/workflows", content="name: Launch elsewhere\nsteps:\n  - {id: a, prompt: hi}\n", headers={**other, "Content-Type": YAML})

    async def names(**params: str | int) -> list[str]:
        response = await client.get("/v1/workflows", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [w["name"] for w in response.json()["items"]]

    assert await names(q="launch") == ["Launch review", "Launch kit"]  # newest first; never another user's
    assert await names(q="REPORT") == ["Report_card", "Weekly report"]
    assert await names(q="%") == ["50% off"]  # LIKE's wildcards are plain characters
    assert await names(q="t_c") == ["Report_card"]
    assert await names(q="nothing like it") == []
    assert len(await names(q="")) == 5  # an empty search is no filter

    first = (await client.get("/v1/workflows", params={"q": "launch", "limit": 1}, headers=auth)).json()
    assert [w["name"] for w in first["items"]] == ["Launch review"] and first["next_cursor"]
    assert await names(q="launch", cursor=first["next_cursor"]) == ["Launch kit"]

    bad = await client.get("/v1/workflows", params={"q": "a\x00b"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["type"] == "invalid-request"
