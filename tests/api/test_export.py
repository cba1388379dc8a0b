"""Export a run as a file: Markdown a person reads (every step's prompt and answer) or
the run's JSON, for the owner only."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from .conftest import HELLO, bearer, create_workflow, wait_finished

STRUCTURED = """\
name: Launch kit | v2
steps:
  - id: research
    prompt: "Who buys a kettle?"
    outputs:
      - {name: audience, description: The buyers}
  - id: slogan
    prompt: "A slogan for {{ steps.research.outputs.audience }}"
"""

FAILING = """\
name: Broken
inputs:
  zero: {type: integer, default: 0}
steps:
  - id: ok
    prompt: "Fine"
  - id: divide
    needs: [ok]
    prompt: "{{ 1 // inputs.zero }}"
"""


async def _finished_run(client: httpx.AsyncClient, auth: dict[str, str], source: str, inputs: dict[str, object] | None = None) -> dict[str, object]:
    workflow = await create_workflow(client, auth, source)
    started = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"inputs": inputs or {}}, headers=auth)
    assert started.status_code == 202, started.text
    return await wait_finished(client, auth, started.json()["id"])


async def test_markdown_holds_every_step_with_its_prompt_and_answer(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run = await _finished_run(client, auth, HELLO, {"who": "Ada"})
    assert run["status"] == "succeeded"
    response = await client.get(f"/v1/runs/{run['id']}/export", params={"format": "md"}, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="hello-{str(run["id"])[:8]}.md"'
    text = response.text
    assert text.startswith(f"# Hello: run {run['id']}\n")
    assert "| Status | succeeded |" in text and "- **who**: Ada" in text and "- **times**: 1" in text
    for number, step in enumerate(run["steps"], start=1):  # type: ignore[arg-type]
        assert f"### {number}. {step['id']}: succeeded" in text
        assert step["prompt"] in text and step["output"] in text
        assert f"model {step['model']}" in text and f"{step['usage']['total_tokens']} tokens" in text
    assert text.index("### 1. greet") < text.index("### 2. shout")


async def test_structured_answers_export_as_json_blocks(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run = await _finished_run(client, auth, STRUCTURED)
    text = (await client.get(f"/v1/runs/{run['id']}/export?format=md", headers=auth)).text
    research = run["steps"][0]  # type: ignore[index]
    assert "**Answer** (structured)" in text
    assert "```json\n" + json.dumps(research["outputs"], indent=2) + "\n```" in text
    assert text.startswith("# Launch kit | v2: run")  # a heading may hold a pipe; a table cell may not
    disposition = (await client.get(f"/v1/runs/{run['id']}/export?format=md", headers=auth)).headers["content-disposition"]
    assert 'filename="launch-kit-v2-' in disposition


async def test_a_failed_run_exports_its_error(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run = await _finished_run(client, auth, FAILING)
    assert run["status"] == "failed"
    text = (await client.get(f"/v1/runs/{run['id']}/export?format=md", headers=auth)).text
    assert "| Status | failed |" in text and "## Error" in text and "step `divide`" in text
    assert "### 2. divide: failed" in text and "**Error** (" in text


async def test_json_is_the_run_as_the_api_shows_it(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run = await _finished_run(client, auth, HELLO, {"who": "Ada"})
    response = await client.get(f"/v1/runs/{run['id']}/export", headers=auth)  # json by default
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].endswith('.json"')
    assert response.json() == run


async def test_another_users_run_and_bad_formats_are_refused(client: httpx.AsyncClient, auth: dict[str, str], make_user: Callable[..., str]) -> None:
    run = await _finished_run(client, auth, HELLO, {"who": "Ada"})
    stranger = await client.get(f"/v1/runs/{run['id']}/export?format=md", headers=bearer(make_user()))
    assert stranger.status_code == 404 and stranger.json()["type"] == "not-found"
    assert "Ada" not in stranger.text
    unknown = await client.get("/v1/runs/00000000-0000-4000-8000-000000000000/export", headers=auth)
    assert unknown.status_code == 404
    wrong = await client.get(f"/v1/runs/{run['id']}/export?format=pdf", headers=auth)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["path"] == "query.format"
    assert (await client.get(f"/v1/runs/{run['id']}/export")).status_code == 401
