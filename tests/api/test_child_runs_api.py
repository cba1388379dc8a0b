"""`workflow` steps through the API: the child run is in the run list (filterable by
parent) and linked both ways; a workflow that is not the caller's is refused at start
(422, nothing started)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from .conftest import YAML, bearer, wait_finished

CHILD = """\
name: Child
inputs:
  topic: {type: string}
steps:
  - id: summary
    prompt: "Summarize {{ inputs.topic }}"
"""


def parent_source(ref: str) -> str:
    return f"""\
name: Parent
steps:
  - id: research
    prompt: Research
  - id: sub
    workflow: {{{ref}, inputs: {{topic: "{{{{ research }}}}"}}}}
  - id: final
    prompt: "Final: {{{{ steps.sub.outputs.summary }}}}"
"""


async def save(client: httpx.AsyncClient, auth: dict[str, str], source: str) -> dict[str, object]:
    response = await client.post("/v1/workflows", content=source, headers={**auth, "Content-Type": YAML})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_child_run_is_listed_and_linked_both_ways(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    child_wf = await save(client, auth, CHILD)
    response = await client.post("/v1/runs", json={"source": parent_source("name: Child")}, headers=auth)
    assert response.status_code == 202, response.text
    parent = await wait_finished(client, auth, response.json()["id"])
    assert parent["status"] == "succeeded", parent
    sub = {s["id"]: s for s in parent["steps"]}["sub"]
    listed = (await client.get("/v1/runs", params={"parent_run_id": parent["id"]}, headers=auth)).json()["items"]
    assert [r["id"] for r in listed] == [sub["child_run_id"]]
    child = (await client.get(f"/v1/runs/{sub['child_run_id']}", headers=auth)).json()
    assert child["parent"] == {"run_id": parent["id"], "step_id": "sub"} and child["workflow_id"] == child_wf["id"]
    assert child["inputs"] == {"topic": {s["id"]: s for s in parent["steps"]}["research"]["output"]}
    assert sub["outputs"] == child["outputs"] and sub["usage"] == child["usage"]
    final = {s["id"]: s for s in parent["steps"]}["final"]
    assert final["prompt"] == f"Final: {child['outputs']['summary']}"
    everything = (await client.get("/v1/runs", headers=auth)).json()["items"]
    assert {parent["id"], child["id"]} <= {r["id"] for r in everything}
    assert (await client.get("/v1/runs", params={"parent_run_id": child["id"]}, headers=auth)).json()["items"] == []


async def test_a_workflow_that_is_not_the_callers_is_refused_at_start(client: httpx.AsyncClient, auth: dict[str, str], make_user: Callable[..., str]) -> None:
    stranger = bearer(make_user())
    theirs = await save(client, stranger, CHILD)
    for ref, path in ((f"id: '{theirs['id']}'", "steps[1].workflow.id"), ("name: Nobody", "steps[1].workflow.name")):
        response = await client.post("/v1/runs", json={"source": parent_source(ref)}, headers=auth)
        assert response.status_code == 422 and response.json()["type"] == "workflow-not-found", response.text
        assert [e["path"] for e in response.json()["errors"]] == [path]
    assert (await client.get("/v1/runs", headers=auth)).json()["items"] == []
    mine = await save(client, auth, parent_source(f"id: '{theirs['id']}'"))
    response = await client.post(f"/v1/workflows/{mine['id']}/runs", json={}, headers=auth)
    assert response.status_code == 422 and response.json()["type"] == "workflow-not-found"
