"""Two users: B tries every endpoint with A's ids and gets 404; nothing of A's changes."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from .conftest import HELLO, YAML, bearer, create_workflow, wait_finished


async def _snapshot(client: httpx.AsyncClient, a: dict[str, str], wf_id: str, run_ids: list[str]) -> dict[str, object]:
    state: dict[str, object] = {"workflow": (await client.get(f"/v1/workflows/{wf_id}", headers=a)).json()}
    for rid in run_ids:
        run = (await client.get(f"/v1/runs/{rid}", headers=a)).json()
        events = (await client.get(f"/v1/runs/{rid}/events", headers=a)).json()["events"]
        state[rid] = (run, [e["seq"] for e in events])
    state["secret"] = (await client.get("/v1/webhook-secret", headers=a)).json()
    state["runs"] = [r["id"] for r in (await client.get("/v1/runs", headers=a)).json()["items"]]
    return state


async def _settle_paused(client: httpx.AsyncClient, a: dict[str, str], rid: str) -> None:
    """Wait until the step-mode run has paused after its first step (nothing moves then)."""
    after = 0
    for _ in range(50):
        page = (await client.get(f"/v1/runs/{rid}/events", params={"after": after, "wait": 5}, headers=a)).json()
        after = page["next_after"]
        if any(e["type"] == "run.paused" for e in page["events"]):
            return
    raise AssertionError("the step-mode run never paused")


async def test_another_users_ids_answer_404_and_change_nothing(client: httpx.AsyncClient, make_user: Callable[..., str]) -> None:
    a, b = bearer(make_user()), bearer(make_user())
    wf = await create_workflow(client, a)
    key = {"Idempotency-Key": "shared-key"}
    done = (await client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {"who": "A"}}, headers={**a, **key})).json()["id"]
    await wait_finished(client, a, done)
    step_wf = await create_workflow(client, a, "name: S\nsteps:\n  - id: one\n    prompt: hi\n  - id: two\n    prompt: '{{ one }}'\n")
    paused = (await client.post(f"/v1/workflows/{step_wf['id']}/runs", json={"mode": "step"}, headers=a)).json()["id"]
    await _settle_paused(client, a, paused)
    before = await _snapshot(client, a, wf["id"], [done, paused])

    attempts = [
        ("GET", f"/v1/workflows/{wf['id']}", {}),
        ("PUT", f"/v1/workflows/{wf['id']}", {"content": HELLO.replace("Hello", "Mine"), "headers": {"Content-Type": YAML}}),
        ("PUT", f"/v1/workflows/{wf['id']}", {"json": {"source": HELLO}}),
        ("DELETE", f"/v1/workflows/{wf['id']}", {}),
        ("POST", f"/v1/workflows/{wf['id']}/runs", {"json": {"inputs": {"who": "B"}}}),
        ("GET", f"/v1/runs/{done}", {}),
        ("GET", f"/v1/runs/{done}/events", {}),
        ("GET", f"/v1/runs/{done}/events?after=0&wait=1", {}),
        ("GET", f"/v1/runs/{done}/events", {"headers": {"Accept": "text/event-stream"}}),
        ("GET", f"/v1/runs/{done}/export?format=md", {}),
        ("GET", f"/v1/runs/{done}/export?format=json", {}),
        ("GET", f"/v1/runs/{done}/webhook-deliveries", {}),
        ("POST", f"/v1/runs/{done}/webhook-deliveries/redeliver", {}),
        ("GET", f"/v1/runs/{done}/export?format=md", {}),
        ("POST", f"/v1/runs/{done}/export", {"json": {"format": "md", "store": True}}),
        *[("POST", f"/v1/runs/{rid}/{action}", {}) for rid in (done, paused) for action in ("pause", "resume", "step", "cancel", "retry")],
    ]
    for method, url, kwargs in attempts:
        headers = {**b, **kwargs.pop("headers", {})}
        response = await client.request(method, url, headers=headers, **kwargs)
        assert response.status_code == 404, (method, url, response.status_code, response.text)
        assert response.json()["type"] == "not-found"

    # B's own views hold nothing of A's; B's own secret is not A's.
    assert (await client.get("/v1/workflows", headers=b)).json()["items"] == []
    assert (await client.get("/v1/runs", params={"workflow_id": wf["id"]}, headers=b)).json()["items"] == []
    assert (await client.get("/v1/runs", headers=b)).json()["items"] == []
    assert (await client.get("/v1/webhook-secret", headers=b)).json()["secret"] != before["secret"]["secret"]  # type: ignore[index]
    # The same Idempotency-Key is B's own: it starts B's run, never returns A's.
    mine = await client.post("/v1/runs", json={"source": HELLO, "inputs": {"who": "B"}}, headers={**b, **key})
    assert mine.status_code == 202 and mine.json()["id"] != done

    after = await _snapshot(client, a, wf["id"], [done, paused])
    assert after == before


async def test_webhook_secret_is_created_once_and_rotates(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    first = (await client.get("/v1/webhook-secret", headers=auth)).json()
    assert first["secret"].startswith("whsec_") and first["rotated_at"] is None
    import base64

    assert len(base64.b64decode(first["secret"].removeprefix("whsec_"))) == 32
    assert (await client.get("/v1/webhook-secret", headers=auth)).json() == first
    rotated = await client.post("/v1/webhook-secret/rotate", headers=auth)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != first["secret"] and rotated.json()["rotated_at"] is not None
    assert (await client.get("/v1/webhook-secret", headers=auth)).json() == rotated.json()
