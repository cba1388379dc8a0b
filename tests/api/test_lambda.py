"""The Lambda entry point as Lambda runs it: a fresh process imports functions/api.py
and calls ``handler`` with API Gateway HTTP API v2 events (tests/fixtures)."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import HELLO, SECRET, make_token

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "tests" / "fixtures" / "apigw_v2_event.json").read_text())

# Read events (a JSON list) on stdin; answer each through the handler, as Lambda would.
_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from functions.api import handler
print(json.dumps([handler(event, None) for event in json.load(sys.stdin)]))
"""


def _event(method: str, path: str, *, token: str | None = None, body: Any = None, query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    if token:
        event["headers"]["authorization"] = f"Bearer {token}"
    event["headers"].update(headers or {})
    if body is not None:
        raw = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
        event["headers"]["content-length"] = str(len(raw))
        event["body"] = raw
    return event


def _invoke(events: list[dict[str, Any]], env: dict[str, str]) -> list[dict[str, Any]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATE_", "SUPABASE_", "DATABASE_", "OPENAI_"))}
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(ROOT)],
        input=json.dumps(events), capture_output=True, text=True, env={**base, **env}, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    return json.loads(base64.b64decode(raw) if response.get("isBase64Encoded") else raw)


def test_the_handler_serves_api_gateway_v2_events(pg_url: str, make_user: Callable[..., str]) -> None:
    user = make_user()
    token = make_token(user)
    env = {"DATABASE_URL": pg_url, "SUPABASE_JWT_SECRET": SECRET}
    health, anonymous, created, listed, inline, sse, missing = _invoke(
        [
            EVENT,
            _event("GET", "/v1/workflows"),
            _event("POST", "/v1/workflows", token=token, body={"source": HELLO}),
            _event("GET", "/v1/workflows", token=token, query="limit=5"),
            _event("POST", "/v1/runs", token=token, body={"source": HELLO, "inputs": {"who": "Lambda"}}),
            _event("GET", "/v1/runs/00000000-0000-4000-8000-000000000000/events", token=token, headers={"accept": "text/event-stream"}),
            _event("GET", "/v1/nowhere", token=token),
        ],
        env,
    )
    assert health["statusCode"] == 200 and _body(health)["status"] == "ok"
    assert anonymous["statusCode"] == 401
    assert anonymous["headers"]["content-type"] == "application/problem+json"
    assert anonymous["headers"]["www-authenticate"].startswith("Bearer")
    assert created["statusCode"] == 201 and _body(created)["name"] == "Hello"
    assert [w["id"] for w in _body(listed)["items"]] == [_body(created)["id"]]
    assert inline["statusCode"] == 202 and _body(inline)["inputs"] == {"who": "Lambda", "times": 1}
    assert sse["statusCode"] == 404 and _body(sse)["type"] == "not-found"
    assert missing["statusCode"] == 404 and _body(missing)["type"] == "not-found"


def test_a_misconfigured_function_fails_at_import_with_a_clear_message(pg_url: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATE_", "SUPABASE_", "DATABASE_", "OPENAI_"))}
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(ROOT)], input="[]", capture_output=True, text=True, env=base, cwd=ROOT, timeout=60)
    assert proc.returncode != 0
    assert "SUPABASE_JWT_SECRET" in proc.stderr
