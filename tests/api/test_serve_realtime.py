"""`orchestrate submit` and `watch` against a Supabase-configured service: `serve` in a
subprocess on a database that broadcasts, the Realtime stand-in in a thread. The CLI
learns from /v1/config that progress is pushed, subscribes to the run's private topic,
and follows it to the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import HELLO, SECRET
from tests.api.test_serve import Service, start_service
from tests.fakes.realtime_server import RealtimeServer

pytestmark = pytest.mark.postgres

PUBLISHABLE = "sb_publishable_cli_test"


@pytest.fixture(scope="module")
def realtime(realtime_pg_url: str) -> Iterator[RealtimeServer]:
    with RealtimeServer.in_thread(realtime_pg_url, SECRET, {PUBLISHABLE}) as server:
        yield server


@pytest.fixture(scope="module")
def service(realtime_pg_url: str, realtime: RealtimeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    extra = {"SUPABASE_URL": realtime.url, "SUPABASE_JWT_SECRET": SECRET, "SUPABASE_PUBLISHABLE_KEY": PUBLISHABLE}
    yield from start_service(realtime_pg_url, tmp_path_factory.mktemp("serve-rt"), extra)


def test_submit_and_watch_follow_the_run_through_realtime(service: Service, realtime: RealtimeServer, tmp_path: Path) -> None:
    assert service.cli("token").returncode == 0
    flow = tmp_path / "hello.yaml"
    flow.write_text(HELLO)
    submitted = service.cli("submit", str(flow), "--input", "who=live", "--json")
    assert submitted.returncode == 0, submitted.stderr
    run = json.loads(submitted.stdout)
    assert run["status"] == "succeeded"
    joins = [j for j in realtime.joins if j.topic == f"run:{run['id']}"]
    assert joins and all(j.ok and j.private for j in joins)  # followed by push, not by polling

    watched = service.cli("watch", run["id"])
    assert watched.returncode == 0, watched.stderr
    assert "succeeded" in watched.stdout and "shout" in watched.stderr
    assert len([j for j in realtime.joins if j.topic == f"run:{run['id']}"]) == len(joins) + 1

