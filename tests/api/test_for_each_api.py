"""A for_each run through the API: each item is visible in the run and its events."""

from __future__ import annotations

import httpx

from .conftest import create_workflow, wait_finished

MAP = """\
name: Map
inputs: {topics: {type: array, default: [tea, coffee, cocoa]}}
steps:
  - id: drafts
    for_each: "{{ inputs.topics }}"
    concurrency: 2
    prompt: "About {{ item }} ({{ loop.index }} of {{ loop.length }})"
"""


async def test_a_for_each_run_shows_each_item(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    wf = await create_workflow(client, auth, MAP)
    response = await client.post(f"/v1/workflows/{wf['id']}/runs", json={}, headers=auth)
    assert response.status_code == 202, response.text
    final = await wait_finished(client, auth, response.json()["id"])
    assert final["status"] == "succeeded", final
    steps = final["steps"]
    assert [s["id"] for s in steps] == ["drafts", "drafts[0]", "drafts[1]", "drafts[2]"]
    assert [s["item"] for s in steps] == [None, *({"step": "drafts", "index": i} for i in range(3))]
    answers = [s["output"] for s in steps[1:]]
    assert steps[0]["outputs"] == answers and final["outputs"] == {"drafts": answers}
    assert steps[2]["prompt"] == "About coffee (2 of 3)"
    events = (await client.get(f"/v1/runs/{final['id']}/events", headers=auth)).json()["events"]
    assert [e["type"] for e in events if e["step_id"] == "drafts[1]"] == ["step.queued", "step.started", "step.succeeded"]
