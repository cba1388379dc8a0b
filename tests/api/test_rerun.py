"""POST /v1/runs/{id}/rerun: a new run reusing the answers before `from`, linked to its
source; bad requests are 4xx problems naming what is wrong, and start nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from .conftest import bearer, wait_finished

CHAIN = """\
name: Chain
inputs:
  who: {type: string}
steps:
  - id: research
    prompt: "About {{ inputs.who }}"
    outputs: [{name: audience}]
  - id: draft
    prompt: "Draft for {{ steps.research.outputs.audience }}"
  - id: polish
    prompt: "Polish {{ draft }}"
"""


async def finished_run(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, object]:
    response = await client.post("/v1/runs", json={"source": CHAIN, "inputs": {"who": "Ada"}}, headers=auth)
    assert response.status_code == 202, response.text
    run = await wait_finished(client, auth, response.json()["id"])
    assert run["status"] == "succeeded"
    return run


async def count_runs(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    return len((await client.get("/v1/runs", headers=auth)).json()["items"])


async def test_rerun_reuses_earlier_steps_and_links_to_its_source(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    source = await finished_run(client, auth)
    body = {"from": "polish", "outputs": {"research": {"audience": "night owls"}}}
    response = await client.post(f"/v1/runs/{source['id']}/rerun", json=body, headers=auth)
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["rerun_of"] == {"run_id": source["id"], "from": "polish"} and new["parent"] is None
    assert response.headers["location"] == f"/v1/runs/{new['id']}"
    final = await wait_finished(client, auth, new["id"])
    steps = {s["id"]: s for s in final["steps"]}
    assert final["status"] == "succeeded" and final["inputs"] == {"who": "Ada"}
    assert steps["research"]["reused"] and steps["research"]["outputs"] == {"audience": "night owls"}
    assert steps["research"]["attempt"] == 0 and steps["research"]["usage"]["total_tokens"] == 0
    assert not steps["draft"]["reused"] and steps["draft"]["prompt"] == "Draft for night owls"  # the edit flowed downstream
    assert final["usage"]["total_tokens"] == steps["draft"]["usage"]["total_tokens"] + steps["polish"]["usage"]["total_tokens"]
    events = (await client.get(f"/v1/runs/{new['id']}/events", headers=auth)).json()["events"]
    assert [(e["type"], e["data"]["edited"]) for e in events if e["step_id"] == "research"] == [("step.reused", True)]  # never started
    assert events[0]["data"]["rerun_of"] == {"run_id": source["id"], "from": "polish"}


async def test_rerun_with_changed_inputs_and_idempotency(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    source = await finished_run(client, auth)
    headers = {**auth, "Idempotency-Key": f"rerun-{uuid.uuid4()}"}
    body = {"from": "polish", "inputs": {"who": "Grace"}}
    first = await client.post(f"/v1/runs/{source['id']}/rerun", json=body, headers=headers)
    again = await client.post(f"/v1/runs/{source['id']}/rerun", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    final = await wait_finished(client, auth, first.json()["id"])
    assert final["inputs"] == {"who": "Grace"}
    assert not any(s["reused"] for s in final["steps"])  # research reads the changed input: everything runs again
    other = await client.post(f"/v1/runs/{source['id']}/rerun", json={"from": "draft"}, headers=headers)
    assert other.status_code == 409


async def test_bad_reruns_are_problems_and_start_nothing(client: httpx.AsyncClient, auth: dict[str, str], make_user: Callable[..., str]) -> None:
    source = await finished_run(client, auth)
    url = f"/v1/runs/{source['id']}/rerun"
    before = await count_runs(client, auth)
    cases = [
        ({"from": "polsh"}, 422, "invalid-rerun", "body.from"),
        ({"from": "draft", "outputs": {"ghost": "x"}}, 422, "invalid-rerun", "body.outputs.ghost"),
        ({"from": "draft", "outputs": {"polish": "x"}}, 422, "invalid-rerun", "body.outputs.polish"),
        ({"from": "draft", "outputs": {"research": "text"}}, 422, "invalid-rerun", "body.outputs.research"),
        ({"from": "draft", "inputs": {"who": 3}}, 422, "invalid-inputs", "inputs.who"),
        ({"from": "draft", "webhook_url": "ftp://x"}, 422, "invalid-request", None),
        ({"step": "draft"}, 422, "invalid-request", None),
    ]
    for body, status, slug, path in cases:
        response = await client.post(url, json=body, headers=auth)
        assert response.status_code == status and response.json()["type"] == slug, (body, response.text)
        if path:
            assert path in [e["path"] for e in response.json()["errors"]], response.json()
    assert "did you mean 'polish'" in (await client.post(url, json={"from": "polsh"}, headers=auth)).json()["detail"]
    stranger = bearer(make_user())
    response = await client.post(url, json={"from": "draft"}, headers=stranger)
    assert response.status_code == 404 and response.json()["type"] == "not-found"  # another user's run does not exist
    assert (await client.post(f"/v1/runs/{uuid.uuid4()}/rerun", json={"from": "draft"}, headers=auth)).status_code == 404
    assert await count_runs(client, auth) == before


async def test_a_run_still_going_cannot_be_rerun(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    started = (await client.post("/v1/runs", json={"source": CHAIN, "inputs": {"who": "Ada"}, "mode": "step"}, headers=auth)).json()
    response = await client.post(f"/v1/runs/{started['id']}/rerun", json={"from": "draft"}, headers=auth)
    assert response.status_code == 409 and "rerun a finished run" in response.json()["detail"]
    await client.post(f"/v1/runs/{started['id']}/cancel", headers=auth)
