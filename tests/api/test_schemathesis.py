"""Schemathesis against the served OpenAPI, on a real uvicorn server on 127.0.0.1:
no 5xx, and every response conforms to the schema (status, content type, body).
Bounded: a few examples per operation, so the whole run stays well under a minute."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrate.api import create_app, local_stack
from orchestrate.llm import MockProvider
from orchestrate.settings import Settings
from tests.postgres_fixtures import create_user

from .conftest import HELLO, SECRET, make_token

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance]


class Server:
    """uvicorn in a thread with its own event loop, on a socket bound beforehand."""

    def __init__(self, app: Any) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.socket])), daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.socket.close()


@pytest.fixture(scope="module")
def served(pg_url: str) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        user = create_user(conn)
    app = create_app(Settings(supabase_jwt_secret=SECRET), opener=lambda: local_stack(pg_url, MockProvider(0.0), sweep=False))
    headers = {"Authorization": f"Bearer {make_token(user, exp=int(time.time()) + 3600)}"}
    with Server(app) as server:
        # Real ids for the generator to find: a workflow and a finished run.
        wf = httpx.post(f"{server.url}/v1/workflows", json={"source": HELLO}, headers=headers).json()
        run = httpx.post(f"{server.url}/v1/workflows/{wf['id']}/runs", json={"inputs": {"who": "x"}}, headers=headers).json()
        yield server.url, headers, {"workflow_id": wf["id"], "run_id": run["id"]}


# The schema is built by the same code that serves it (no I/O at import); the first
# test checks that the server really serves exactly this document.
OPENAPI = create_app(Settings(supabase_jwt_secret=SECRET)).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)
# Valid and invalid requests alike must never get a 5xx or an undocumented answer.
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])


def test_the_served_openapi_is_the_one_tested(served: tuple[str, dict[str, str], dict[str, str]]) -> None:
    assert httpx.get(f"{served[0]}/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_no_schema_violations(case: schemathesis.Case, served: tuple[str, dict[str, str], dict[str, str]]) -> None:
    url, headers, ids = served
    if case.path_parameters:  # now and then aim at resources that exist
        for name, value in ids.items():
            if name in case.path_parameters and hash(str(case.path_parameters)) % 2:
                case.path_parameters[name] = value
    if case.query and "wait" in case.query:
        case.query["wait"] = 0  # a long-poll would only slow the run down
    case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=30)
