"""Runs: start with validated inputs, idempotency, inline runs, listing, events
(long-poll and SSE), and controls, through the API with a worker running steps."""

from __future__ import annotations

import json
import uuid

import httpx

from .conftest import HELLO, create_workflow, wait_finished

STEPWISE = """\
name: Stepwise
steps:
  - id: one
    prompt: first
  - id: two
    prompt: "after {{ steps.one.output }}"
"""


async def test_a_run_starts_queued_and_finishes_with_outputs(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    wf = await create_workflow(client, auth)
    response = await client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {"who": "Ada"}}, headers=auth)
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] in ("queued", "running") and run["workflow_id"] == wf["id"]
    assert run["inputs"] == {"who": "Ada", "times": 1}
    assert response.headers["location"] == f"/v1/runs/{run['id']}"

    final = await wait_finished(client, auth, run["id"])
    assert final["status"] == "succeeded", final
    assert [s["id"] for s in final["steps"]] == ["greet", "shout"]
    for step in final["steps"]:
        assert step["status"] == "succeeded" and step["attempt"] == 1 and step["output"]
        assert step["usage"]["total_tokens"] > 0 and step["started_at"] and step["finished_at"]
    assert "Ada" in final["steps"][0]["prompt"]
    assert final["usage"]["total_tokens"] == sum(s["usage"]["total_tokens"] for s in final["steps"])

    events = (await client.get(f"/v1/runs/{run['id']}/events", headers=auth)).json()
    types = [e["type"] for e in events["events"]]
    assert types[0] == "run.queued" and types[-1] == "run.succeeded"
    assert [e["seq"] for e in events["events"]] == list(range(1, len(types) + 1))
    assert events["finished"] is True and events["next_after"] == len(types)
    later = (await client.get(f"/v1/runs/{run['id']}/events", params={"after": len(types), "wait": 20}, headers=auth)).json()
    assert later["events"] == [] and later["finished"] is True  # a finished run does not make the client wait


async def test_inputs_are_checked_before_anything_starts(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    wf = await create_workflow(client, auth)
    response = await client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {"times": "many", "whom": "x"}}, headers=auth)
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "invalid-inputs"
    assert {e["path"] for e in body["errors"]} == {"inputs.times", "inputs.whom", "inputs.who"}
    listed = (await client.get("/v1/runs", headers=auth)).json()
    assert listed["items"] == []
    for bad in ({"inputs": []}, {"mode": "fast"}, {"webhook_url": "ftp://x"}, {"unknown": 1}):
        response = await client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {"who": "x"}, **bad}, headers=auth)
        assert response.status_code == 422 and response.json()["type"] == "invalid-request", bad


async def test_idempotency_key_returns_the_same_run_and_conflicts_on_another_body(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    wf = await create_workflow(client, auth)
    url = f"/v1/workflows/{wf['id']}/runs"
    headers = {**auth, "Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await client.post(url, json={"inputs": {"who": "Ada"}}, headers=headers)
    again = await client.post(url, content=json.dumps({"mode": "auto", "inputs": {"who": "Ada"}}), headers={**headers, "Content-Type": "application/json"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    other = await client.post(url, json={"inputs": {"who": "Bob"}}, headers=headers)
    assert other.status_code == 409 and other.json()["type"] == "conflict"
    runs = (await client.get("/v1/runs", params={"workflow_id": wf["id"]}, headers=auth)).json()["items"]
    assert [r["id"] for r in runs] == [first.json()["id"]]


async def test_inline_run_is_not_saved(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/runs", json={"source": HELLO, "inputs": {"who": "Lin"}}, headers=auth)
    assert response.status_code == 202
    final = await wait_finished(client, auth, response.json()["id"])
    assert final["status"] == "succeeded" and final["workflow_id"] is None and final["workflow"] == "Hello"
    assert (await client.get("/v1/workflows", headers=auth)).json()["items"] == []
    invalid = await client.post("/v1/runs", json={"source": "name: x\nsteps: []\n"}, headers=auth)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["line"] == 2


async def test_list_filters_and_pages(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    a = await create_workflow(client, auth)
    b = await create_workflow(client, auth, STEPWISE)
    ids_a = [(await client.post(f"/v1/workflows/{a['id']}/runs", json={"inputs": {"who": str(i)}}, headers=auth)).json()["id"] for i in range(3)]
    for rid in ids_a:
        await wait_finished(client, auth, rid)
    paused = (await client.post(f"/v1/workflows/{b['id']}/runs", json={"mode": "step"}, headers=auth)).json()["id"]

    seen, cursor = [], None
    while True:
        page = (await client.get("/v1/runs", params={"workflow_id": a["id"], "limit": 2, **({"cursor": cursor} if cursor else {})}, headers=auth)).json()
        seen += [r["id"] for r in page["items"]]
        assert all("steps" not in r for r in page["items"])
        if not (cursor := page["next_cursor"]):
            break
    assert seen == list(reversed(ids_a))
    succeeded = (await client.get("/v1/runs", params={"status": "succeeded"}, headers=auth)).json()["items"]
    assert {r["id"] for r in succeeded} == set(ids_a)
    assert paused not in {r["id"] for r in succeeded}
    assert (await client.get("/v1/runs", params={"status": "done"}, headers=auth)).status_code == 422
    assert (await client.get("/v1/runs", params={"cursor": "%%%"}, headers=auth)).status_code == 400


async def test_step_mode_and_controls(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    wf = await create_workflow(client, auth, STEPWISE)
    run = (await client.post(f"/v1/workflows/{wf['id']}/runs", json={"mode": "step"}, headers=auth)).json()
    assert run["mode"] == "step"
    rid = run["id"]
    after = 0
    for _ in range(50):  # the first step runs, then the run pauses
        page = (await client.get(f"/v1/runs/{rid}/events", params={"after": after, "wait": 5}, headers=auth)).json()
        after = page["next_after"]
        if any(e["type"] == "run.paused" for e in page["events"]):
            break
    current = (await client.get(f"/v1/runs/{rid}", headers=auth)).json()
    assert current["status"] == "paused"
    assert [s["status"] for s in current["steps"]] == ["succeeded", "queued"]
    stepped = await client.post(f"/v1/runs/{rid}/step", headers=auth)
    assert stepped.status_code == 200, stepped.text
    final = await wait_finished(client, auth, rid)
    assert final["status"] == "succeeded"
    refused = await client.post(f"/v1/runs/{rid}/pause", headers=auth)
    assert refused.status_code == 409 and refused.json()["type"] == "conflict"
    assert (await client.post(f"/v1/runs/{uuid.uuid4()}/cancel", headers=auth)).status_code == 404


async def test_cancel_a_paused_run(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    wf = await create_workflow(client, auth, STEPWISE)
    rid = (await client.post(f"/v1/workflows/{wf['id']}/runs", json={"mode": "step"}, headers=auth)).json()["id"]
    paused = await client.post(f"/v1/runs/{rid}/pause", headers=auth)
    assert paused.status_code in (200, 409)
    cancelled = await client.post(f"/v1/runs/{rid}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    final = await wait_finished(client, auth, rid)
    assert final["status"] == "cancelled"


async def test_events_as_server_sent_events(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    wf = await create_workflow(client, auth)
    rid = (await client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {"who": "Sam"}}, headers=auth)).json()["id"]
    # The stream ends when the run has finished (httpx's ASGI transport buffers it whole).
    response = await client.get(f"/v1/runs/{rid}/events", headers={**auth, "Accept": "text/event-stream"}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f.startswith("id: ")]
    events = [json.loads(next(line[6:] for line in f.splitlines() if line.startswith("data: "))) for f in frames]
    assert events[0]["type"] == "run.queued" and events[-1]["type"] == "run.succeeded"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    resumed = await client.get(f"/v1/runs/{rid}/events", headers={**auth, "Accept": "text/event-stream", "Last-Event-ID": str(len(events) - 1)})
    assert [f for f in resumed.text.split("\n\n") if f.startswith("id: ")] == [frames[-1]]
