"""Steps the Studio's browser tests share: signing in, creating workflows through the
API, reading and writing the editor's text, waiting for a run's nodes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from .conftest import ROOT, StudioServer

EXAMPLES = ROOT / "examples"
AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"


def sign_in(page: Page, studio: StudioServer) -> None:
    page.goto(studio.signin_link())
    expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()


def create_workflow(studio: StudioServer, source: str) -> dict[str, Any]:
    with studio.api() as client:
        response = client.post("/v1/workflows", content=source, headers={"Content-Type": "application/yaml"})
        assert response.status_code == 201, response.text
        return dict(response.json())


def start_run(studio: StudioServer, workflow_id: str, inputs: dict[str, Any] | None = None, mode: str = "auto") -> dict[str, Any]:
    with studio.api() as client:
        response = client.post(f"/v1/workflows/{workflow_id}/runs", json={"inputs": inputs or {}, "mode": mode})
        assert response.status_code == 202, response.text
        return dict(response.json())


def wait_run(studio: StudioServer, run_id: str, status: str = "succeeded") -> dict[str, Any]:
    with studio.api() as client:
        for _ in range(120):
            body = client.get(f"/v1/runs/{run_id}/events", params={"after": 0, "wait": 1}).json()
            if body["finished"]:
                run = dict(client.get(f"/v1/runs/{run_id}").json())
                assert run["status"] == status, run
                return run
    raise AssertionError(f"run {run_id} did not finish")


def example(name: str) -> str:
    return (EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")


def editor_text(page: Page, workflow_id: str) -> str:
    """The editor's current text, as the Studio keeps it for the open tab."""
    tabs = json.loads(page.evaluate("sessionStorage.getItem('orchestrate.tabs') || '[]'"))
    return next(str(t["text"]) for t in tabs if t["id"] == workflow_id)


def set_editor_text(page: Page, text: str) -> None:
    """Replace the YAML as a paste would (no auto-indent on the way)."""
    page.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


def node(page: Page, step_id: str) -> Any:
    return page.locator(".react-flow__node").filter(has=page.locator(".node-id", has_text=re.compile(f"^{re.escape(step_id)}$")))


def expect_nodes(page: Page, statuses: dict[str, str], timeout: float = 30_000) -> None:
    for step_id, status in statuses.items():
        expect(node(page, step_id).locator(".node-status")).to_contain_text(status, timeout=timeout)


def run_status(page: Page) -> Any:
    return page.locator(".run-head h1 .status")


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the Studio's CSP rightly refuses inline scripts.
        page.evaluate(Path(AXE).read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    found = []
    for v in result:
        targets = [n["target"] for n in v["nodes"]]
        # CodeMirror's scroller holds the editor's contenteditable textbox, which takes the
        # keyboard focus and scrolls it; axe does not count contenteditable as focusable.
        if v["id"] == "scrollable-region-focusable" and all(t == [".cm-scroller"] for t in targets):
            continue
        if v["impact"] in ("serious", "critical"):
            found.append({"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": targets[:5]})
    return found
