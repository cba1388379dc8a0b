"""A durable wait survives `orchestrate serve` being stopped mid-wait: the next start
re-arms the wake-up and the run finishes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.api.test_serve import start_service

NAP = "name: nap\nsteps:\n  - {id: nap, wait: {seconds: 3}}\n  - {id: after, prompt: 'woke at {{ nap }}'}\n"


def test_a_wait_survives_serve_being_restarted(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("serve-waits")
    first = start_service(pg_url, home)
    service = next(first)
    token = service.cli("token").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as http:
        run_id = http.post("/v1/runs", json={"source": NAP}).json()["id"]
        after = 0
        while True:
            page = http.get(f"/v1/runs/{run_id}/events", params={"after": after, "wait": 10}).json()
            after = page["next_after"]
            if any(e["type"] == "step.waiting" for e in page["events"]):
                break
    first.close()  # stopped mid-wait: its in-process queue (and the wake-up) is gone

    second = start_service(pg_url, home)
    service = next(second)
    try:
        with httpx.Client(base_url=service.url, headers=headers, timeout=30) as http:
            finished = False
            while not finished:
                page = http.get(f"/v1/runs/{run_id}/events", params={"after": after, "wait": 10}).json()
                after, finished = page["next_after"], page["finished"]
            final = http.get(f"/v1/runs/{run_id}").json()
        assert final["status"] == "succeeded" and [s["status"] for s in final["steps"]] == ["succeeded", "succeeded"]
        assert re.search(r"re-armed \d+ waiting step", Path(service.log).read_text())
    finally:
        second.close()
