"""A hostile render does not stall the server: templates render in worker threads,
so /v1/health answers while one runs (issue 8: it took 1.37 s before)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from orchestrate import templates
from tests.api.conftest import YAML, create_workflow, wait_finished

# About a second of CPU inside the sandbox, then refused.
HOSTILE = """\
name: Busy
steps:
  - id: spin
    prompt: "{% set big = 'ab' * 500000 %}{% for i in range(100000) %}{{ big.count('c') }}{% endfor %}"
"""


async def test_health_answers_while_a_hostile_prompt_renders(client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    started, real = threading.Event(), templates.render

    def observed(source: str, context: dict[str, Any]) -> str:
        started.set()
        try:
            return real(source, context)
        finally:
            events.append("render finished")

    monkeypatch.setattr(templates, "render", observed)
    wf = await create_workflow(client, auth, HOSTILE)
    response = await client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {}}, headers=auth)
    assert response.status_code == 202, response.text
    while not started.is_set():
        await asyncio.sleep(0.001)
    for _ in range(3):
        health = await client.get("/v1/health")
        assert health.status_code == 200, health.text
        events.append("health")
    final = await wait_finished(client, auth, response.json()["id"])
    assert final["status"] == "failed" and final["error"]["type"] == "template-error"
    assert "CPU" in final["error"]["message"]
    # The three health checks were answered while the render was still running.
    assert events == ["health", "health", "health", "render finished"]
