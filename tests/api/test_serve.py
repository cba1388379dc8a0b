"""End to end as a newcomer does it: `orchestrate serve` in a subprocess, a token
from `orchestrate token`, a workflow created and run over HTTP, watched to the end
(long-poll, SSE, and the CLI's `submit` and `watch`)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.receiver import Receiver

from .conftest import HELLO

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    url: str
    env: dict[str, str]
    log: Path

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrate", *args],
            capture_output=True, text=True, env={**self.env, **env}, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def service(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from start_service(pg_url, tmp_path_factory.mktemp("serve-home"))


def start_service(pg_url: str, home: Path, extra_env: dict[str, str] | None = None) -> Iterator[Service]:
    """`orchestrate serve` on ``pg_url`` in a subprocess until the generator is closed."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATE_", "SUPABASE_", "DATABASE_", "OPENAI_"))}
    env = {
        **base,
        "XDG_DATA_HOME": str(home / "data"),  # the local secret lives here
        "XDG_CONFIG_HOME": str(home / "config"),  # the client config (URL, token) here
        "DATABASE_URL": pg_url,  # the test server, not a second embedded one
        "ORCHESTRATE_USE_MOCK": "1",
        "ORCHESTRATE_MOCK_DELAY": "0.05",
        "ORCHESTRATE_WEBHOOK_ALLOW_PRIVATE": "1",  # webhooks to receivers on loopback
        **(extra_env or {}),
    }
    port = _free_port()
    log = home / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrate", "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Service(url, env, log)
    finally:
        proc.send_signal(signal.SIGTERM)  # what a process manager sends
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the assertion below
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()


def test_serve_token_create_run_and_watch_to_succeeded(service: Service) -> None:
    banner = service.log.read_text()
    assert service.url in banner and "orchestrate token" in banner

    minted = service.cli("token", "--user", "newcomer@example.test")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    again = service.cli("token", "--user", "newcomer@example.test")
    assert again.returncode == 0 and "newcomer@example.test" in again.stderr
    headers = {"Authorization": f"Bearer {token}"}

    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as http:
        wf = http.post("/v1/workflows", content=HELLO, headers={"Content-Type": "application/yaml"})
        assert wf.status_code == 201, wf.text
        run = http.post(f"/v1/workflows/{wf.json()['id']}/runs", json={"inputs": {"who": "newcomer"}})
        assert run.status_code == 202 and run.json()["status"] == "queued"
        rid, after, finished = run.json()["id"], 0, False
        while not finished:
            page = http.get(f"/v1/runs/{rid}/events", params={"after": after, "wait": 10}).json()
            after, finished = page["next_after"], page["finished"]
        final = http.get(f"/v1/runs/{rid}").json()
        assert final["status"] == "succeeded" and all(s["status"] == "succeeded" for s in final["steps"])

        # SSE, live under uvicorn: events arrive as they happen, and the stream ends with the run.
        live = http.post("/v1/runs", json={"source": HELLO, "inputs": {"who": "stream"}}).json()["id"]
        types = []
        with http.stream("GET", f"/v1/runs/{live}/events", headers={"Accept": "text/event-stream"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    types.append(line.removeprefix("event: "))
        assert types[0] == "run.queued" and types[-1] == "run.succeeded" and "step.started" in types


def test_submit_and_watch_use_the_saved_url_and_token(service: Service, tmp_path: Path) -> None:
    assert service.cli("token").returncode == 0  # saves the token beside the URL `serve` saved
    flow = tmp_path / "hello.yaml"
    flow.write_text(HELLO)
    submitted = service.cli("submit", str(flow), "--input", "who=CLI", "--json")
    assert submitted.returncode == 0, submitted.stderr
    run = json.loads(submitted.stdout)
    assert run["status"] == "succeeded" and run["inputs"] == {"who": "CLI", "times": 1}
    assert "succeeded" in submitted.stderr

    queued = service.cli("submit", str(flow), "--input", "who=later", "--no-watch")
    assert queued.returncode == 0, queued.stderr
    watched = service.cli("watch", queued.stdout.strip())
    assert watched.returncode == 0, watched.stderr
    assert "succeeded" in watched.stdout and "shout" in watched.stderr

    invalid = service.cli("submit", str(flow))  # `who` is required
    assert invalid.returncode == 2 and "who" in invalid.stderr and "Traceback" not in invalid.stderr
    unknown = service.cli("watch", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 2 and "not found" in unknown.stderr
    refused = service.cli("watch", queued.stdout.strip(), ORCHESTRATE_TOKEN="not-a-token")
    assert refused.returncode == 2 and "orchestrate token" in refused.stderr


def test_deliveries_shows_every_attempt_and_redelivers(service: Service, tmp_path: Path) -> None:
    receiver = Receiver().then(500)
    try:
        minted = service.cli("token")
        assert minted.returncode == 0, minted.stderr
        flow = tmp_path / "hello.yaml"
        flow.write_text(HELLO)
        submitted = service.cli("submit", str(flow), "--input", "who=hooks", "--webhook-url", receiver.url, "--no-watch")
        assert submitted.returncode == 0, submitted.stderr
        run_id = submitted.stdout.strip()
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {minted.stdout.strip()}"}, timeout=30) as http:

            def attempts() -> int:
                items = http.get(f"/v1/runs/{run_id}/webhook-deliveries").json()["items"]
                return sum(len(d["attempts"]) for d in items if d["status"] != "delivering")

            deadline = time.monotonic() + 30
            while attempts() < 1:
                assert time.monotonic() < deadline, "the webhook was never attempted"
                time.sleep(0.05)
            shown = service.cli("deliveries", run_id)
            assert shown.returncode == 0, shown.stderr
            assert "run.succeeded" in shown.stdout and "pending" in shown.stdout and "answered 500" in shown.stdout and "500" in shown.stdout

            redelivered = service.cli("deliveries", run_id, "--redeliver", "--json")
            assert redelivered.returncode == 0 and "redelivery" in redelivered.stderr, redelivered.stderr
            assert len(json.loads(redelivered.stdout)["items"]) == 2
            while attempts() < 2:
                assert time.monotonic() < deadline, "the redelivery was never attempted"
                time.sleep(0.05)
        assert [h["webhook-id"] for _, h, _ in receiver.requests] == [json.loads(redelivered.stdout)["items"][1]["webhook_id"]] * 2
        final = service.cli("deliveries", run_id)
        assert final.returncode == 0 and "succeeded (redelivery)" in final.stdout, final.stdout
    finally:
        receiver.stop()
    unknown = service.cli("deliveries", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 2 and "not found" in unknown.stderr and "Traceback" not in unknown.stderr
    malformed = service.cli("deliveries", "not-a-run")
    assert malformed.returncode == 2 and "Traceback" not in malformed.stderr
    refused = service.cli("submit", str(flow), "--webhook-url", "http://169.254.169.254/", "--no-watch", "--input", "who=x")
    assert refused.returncode == 2 and "cloud metadata" in refused.stderr


def test_token_is_refused_for_a_hosted_project(service: Service) -> None:
    proc = service.cli("token", SUPABASE_URL="https://abcd.supabase.co", SUPABASE_JWT_SECRET="x" * 40)
    assert proc.returncode == 2
    assert "local use only" in proc.stderr and proc.stdout == ""


def test_the_studio_sign_in_links_work_once(service: Service) -> None:
    """`serve` prints a sign-in link for the Studio and `token --link` makes more; each
    one's code (in the fragment, never sent with a page request) buys one token."""
    banner = service.log.read_text()
    printed = re.search(rf"Studio: {re.escape(service.url)}/#/signin\?code=(\S+)", banner)
    assert printed, banner
    minted = service.cli("token", "--link", "--user", "linked@example.test")
    assert minted.returncode == 0, minted.stderr
    assert minted.stdout.startswith(f"{service.url}/#/signin?code=") and "works once" in minted.stderr
    fresh = minted.stdout.strip().split("code=", 1)[1]

    with httpx.Client(base_url=service.url, timeout=30) as http:
        assert "Studio" in http.get("/").text  # the app, or the hint to build it
        exchanged = http.post("/v1/auth/link", json={"code": fresh})
        assert exchanged.status_code == 200, exchanged.text
        body = exchanged.json()
        assert body["user"]["email"] == "linked@example.test" and body["token_type"] == "bearer"
        mine = http.get("/v1/workflows", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert mine.status_code == 200
        again = http.post("/v1/auth/link", json={"code": fresh})
        assert again.status_code == 401 and again.json()["type"] == "invalid-signin-code"
        assert http.post("/v1/auth/link", json={"code": printed.group(1)}).json()["user"]["email"] == "dev@orchestrate.local"


def test_export_from_the_command_line_matches_the_api(service: Service, tmp_path: Path) -> None:
    assert service.cli("token").returncode == 0
    flow = tmp_path / "hello.yaml"
    flow.write_text(HELLO)
    submitted = service.cli("submit", str(flow), "--input", "who=Export", "--json")
    assert submitted.returncode == 0, submitted.stderr
    run_id = json.loads(submitted.stdout)["id"]
    token = json.loads((Path(service.env["XDG_CONFIG_HOME"]) / "orchestrate" / "client.json").read_text())["token"]
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for format in ("md", "json"):
            printed = service.cli("export", run_id, "--format", format)
            assert printed.returncode == 0, printed.stderr
            assert printed.stdout == http.get(f"/v1/runs/{run_id}/export", params={"format": format}).text
    written = service.cli("export", run_id, "--output", str(tmp_path / "run.md"))
    assert written.returncode == 0 and "Export" in (tmp_path / "run.md").read_text()
    wrong = service.cli("export", run_id, "--format", "pdf")
    assert wrong.returncode == 2 and "md, json" in wrong.stderr
    unknown = service.cli("export", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 2 and "not found" in unknown.stderr and "Traceback" not in unknown.stderr


def test_rerun_from_the_command_line(service: Service, tmp_path: Path) -> None:
    assert service.cli("token").returncode == 0
    flow = tmp_path / "hello.yaml"
    flow.write_text(HELLO)
    source = json.loads(service.cli("submit", str(flow), "--input", "who=first", "--json").stdout)
    rerun = service.cli("rerun", source["id"], "--from", "shout", "--output-of", "greet=Hi there", "--input", "times=2", "--json")
    assert rerun.returncode == 0, rerun.stderr
    run = json.loads(rerun.stdout)
    assert run["rerun_of"] == {"run_id": source["id"], "from": "shout"} and run["inputs"] == {"who": "first", "times": 2}
    steps = {s["id"]: s for s in run["steps"]}
    assert steps["greet"]["reused"] and steps["greet"]["output"] == "Hi there" and steps["shout"]["prompt"] == "Shout this: Hi there"
    assert "reused greet" in rerun.stderr
    bad = service.cli("rerun", source["id"], "--from", "shuot")
    assert bad.returncode == 2 and "did you mean 'shout'" in bad.stderr and "Traceback" not in bad.stderr
