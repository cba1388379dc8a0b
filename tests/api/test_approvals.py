"""Approval steps through the API: the owner approves or rejects, a system answers
through the signed callback URL (once), a timeout ends the wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.api.conftest import bearer, wait_finished

FLOW = """\
name: Gate
inputs: {topic: {type: string, default: tides}}
steps:
  - id: draft
    prompt: "Draft about {{ inputs.topic }}"
  - id: review
    needs: draft
    approval:
      message: "Publish the draft about {{ inputs.topic }}?"
      fields:
        - {name: ok, type: boolean}
        - {name: note, type: string, description: For the editor}
      {timeout}
    on_error: continue
  - id: publish
    prompt: "Publish ({{ steps.review.outputs.note }})"
  - id: rewrite
    needs: review
    when: "steps.review.status == 'failed'"
    prompt: "Rewrite"
"""


async def start(client: httpx.AsyncClient, auth: dict[str, str], timeout: str = "") -> str:
    response = await client.post("/v1/runs", json={"source": FLOW.replace("{timeout}", timeout)}, headers=auth)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def waiting_event(client: httpx.AsyncClient, auth: dict[str, str], run_id: str) -> dict[str, Any]:
    after = 0
    for _ in range(100):
        page = (await client.get(f"/v1/runs/{run_id}/events", params={"after": after, "wait": 5}, headers=auth)).json()
        after = page["next_after"]
        for event in page["events"]:
            if event["type"] == "step.waiting":
                return dict(event)
    raise AssertionError("no step.waiting event")


def statuses(run: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["status"] for s in run["steps"]}


async def test_the_owner_approves_with_checked_fields(client: httpx.AsyncClient, auth: dict[str, str], make_user: Callable[..., str]) -> None:
    run_id = await start(client, auth)
    event = await waiting_event(client, auth, run_id)
    assert event["step_id"] == "review" and event["data"]["message"] == "Publish the draft about tides?"
    token_url = event["data"]["callback_url"]
    run = (await client.get(f"/v1/runs/{run_id}", headers=auth)).json()
    assert run["status"] == "running" and statuses(run)["review"] == "waiting"
    waiting = next(s for s in run["steps"] if s["id"] == "review")["waiting"]
    assert waiting["kind"] == "approval" and [f["name"] for f in waiting["fields"]] == ["ok", "note"]
    assert [s["kind"] for s in run["steps"]] == ["prompt", "approval", "prompt", "prompt"]
    assert waiting["callback_expires_at"] is not None
    token = token_url.rsplit("/", 1)[1]
    exported = await client.get(f"/v1/runs/{run_id}/export", params={"format": "md"}, headers=auth)
    assert token not in (await client.get(f"/v1/runs/{run_id}", headers=auth)).text and token not in exported.text

    stranger = bearer(make_user())
    assert (await client.post(f"/v1/runs/{run_id}/steps/review/approve", json={"fields": {"ok": True, "note": "x"}}, headers=stranger)).status_code == 404
    bad = await client.post(f"/v1/runs/{run_id}/steps/review/approve", json={"fields": {"ok": "yes", "extra": 1}}, headers=auth)
    assert bad.status_code == 422 and bad.json()["type"] == "invalid-answer"
    assert sorted(e["path"] for e in bad.json()["errors"]) == ["body.fields.extra", "body.fields.note", "body.fields.ok"]
    assert (await client.post(f"/v1/runs/{run_id}/steps/draft/approve", json={}, headers=auth)).status_code == 409
    assert (await client.post(f"/v1/runs/{run_id}/steps/nope/approve", json={}, headers=auth)).status_code == 404

    ok = await client.post(f"/v1/runs/{run_id}/steps/review/approve", json={"fields": {"ok": True, "note": "ship"}}, headers=auth)
    assert ok.status_code == 200, ok.text
    again = await client.post(f"/v1/runs/{run_id}/steps/review/reject", json={"reason": "late"}, headers=auth)
    assert again.status_code == 409 and again.json()["type"] == "conflict"
    final = await wait_finished(client, auth, run_id)
    assert final["status"] == "succeeded" and statuses(final)["rewrite"] == "skipped"
    assert next(s for s in final["steps"] if s["id"] == "publish")["prompt"] == "Publish (ship)"
    # The callback URL of an answered step is refused.
    used = await client.post(f"/v1/callbacks/{token}", json={"action": "approve", "fields": {"ok": True, "note": "y"}})
    assert used.status_code == 410 and used.json()["type"] == "callback-used"


async def test_a_rejection_takes_the_when_branch(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run_id = await start(client, auth)
    await waiting_event(client, auth, run_id)
    rejected = await client.post(f"/v1/runs/{run_id}/steps/review/reject", json={"reason": "off-brand"}, headers=auth)
    assert rejected.status_code == 200
    final = await wait_finished(client, auth, run_id)
    assert final["status"] == "succeeded"
    assert statuses(final) == {"draft": "succeeded", "review": "failed", "publish": "skipped", "rewrite": "succeeded"}
    review = next(s for s in final["steps"] if s["id"] == "review")
    assert review["error"]["type"] == "approval-rejected" and review["error"]["message"] == "rejected: off-brand"


async def test_the_callback_url_answers_once_without_a_token(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run_id = await start(client, auth)
    token = (await waiting_event(client, auth, run_id))["data"]["callback_url"].rsplit("/", 1)[1]
    assert (await client.post(f"/v1/callbacks/{token}x", json={"action": "reject"})).status_code == 404
    bad = await client.post(f"/v1/callbacks/{token}", json={"action": "approve", "fields": {"ok": 1, "note": "n"}})
    assert bad.status_code == 422 and [e["path"] for e in bad.json()["errors"]] == ["body.fields.ok"]
    first, second = await asyncio.gather(
        client.post(f"/v1/callbacks/{token}", json={"action": "approve", "fields": {"ok": True, "note": "by bot"}}),
        client.post(f"/v1/callbacks/{token}", json={"action": "approve", "fields": {"ok": True, "note": "twice"}}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 410]
    winner = first if first.status_code == 200 else second
    assert winner.json() == {"run_id": run_id, "step_id": "review", "status": "succeeded"}
    final = await wait_finished(client, auth, run_id)
    assert next(s for s in final["steps"] if s["id"] == "review")["outputs"]["ok"] is True


async def test_a_timeout_rejects_and_its_callback_url_has_expired(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    run_id = await start(client, auth, timeout="timeout: 1")
    token = (await waiting_event(client, auth, run_id))["data"]["callback_url"].rsplit("/", 1)[1]
    final = await wait_finished(client, auth, run_id)
    assert final["status"] == "succeeded" and statuses(final)["review"] == "failed" and statuses(final)["rewrite"] == "succeeded"
    expired = await client.post(f"/v1/callbacks/{token}", json={"action": "approve", "fields": {"ok": True, "note": "n"}})
    assert expired.status_code == 410 and expired.json()["type"] == "callback-expired"
