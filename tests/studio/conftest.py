"""The Studio in a real browser against a real server.

``studio_server(mock_delay=...)`` starts ``orchestrate serve --mock`` in a subprocess
(one per delay, kept for the session) on a free loopback port, with its own database on
the tests' PostgreSQL and its own data and config folders (its local signing secret).
``studio`` is the default server, once the Studio is built. ``page`` is a fresh
Playwright page (a new browser context per test) in Debian's Chromium. Browser tests are
sync tests without asyncio fixtures (Playwright's sync API runs its own loop).

Chromium missing: the browser tests skip with the reason locally and fail under CI=true.
The Studio not built: the same (``make ui`` builds it; ``make test`` does so itself)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrate.api.studio import STUDIO_DIR
from tests.postgres_fixtures import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
DEFAULT_DELAY = 0.05
DEFAULT_EMAIL = "dev@orchestrate.local"
# The flags the contract fixes: headless, nothing but loopback, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where the browser suite must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run the browser tests)", pytrace=False)
    pytest.skip(reason)


@dataclass
class StudioServer:
    """A running ``orchestrate serve --mock``: its URL, environment and log."""

    url: str
    env: dict[str, str]
    log: Path
    mock_delay: float
    _tokens: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``orchestrate ARGS`` with this server's environment (database, secret, URL)."""
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrate", *args],
            capture_output=True, text=True, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        if check:
            assert proc.returncode == 0, f"orchestrate {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        return proc

    def signin_link(self, email: str = DEFAULT_EMAIL) -> str:
        """A fresh one-time sign-in link (``orchestrate token --link``) for ``email``."""
        return self.cli("token", "--link", "--user", email, "--url", self.url).stdout.strip()

    def token(self, email: str = DEFAULT_EMAIL) -> str:
        """A development access token for ``email`` (the user is created if new)."""
        if email not in self._tokens:
            self._tokens[email] = self.cli("token", "--user", email, "--no-save").stdout.strip()
        return self._tokens[email]

    def api(self, email: str = DEFAULT_EMAIL) -> httpx.Client:
        """An HTTP client of this server's API, signed in as ``email``; close it after use."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token(email)}"}, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    pg_server_url: str, home: Path, mock_delay: float, database: str | None = None, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], StudioServer, str]:
    """Start a server on ``database`` (a new one unless given; dropped with it) with
    ``extra`` environment (a Supabase project, a Storage bucket)."""
    database = database or create_database(pg_server_url, prefix="orchestrate_studio")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATE_", "SUPABASE_", "DATABASE_", "OPENAI_"))}
    env = {
        **base,
        "XDG_DATA_HOME": str(home / "data"),  # the local signing secret
        "XDG_CONFIG_HOME": str(home / "config"),  # the client config (URL, token)
        "DATABASE_URL": database,
        "ORCHESTRATE_MOCK_DELAY": str(mock_delay),
        **(extra or {}),
    }
    port = _free_port()
    log = home / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrate", "serve", "--mock", "--port", str(port), "--no-access-log"],
            env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    server = StudioServer(f"http://127.0.0.1:{port}", env, log, mock_delay)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            drop_database(pg_server_url, database)
            raise AssertionError(f"orchestrate serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/v1/health", timeout=2).status_code == 200:
                return proc, server, database
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"orchestrate serve did not become healthy:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def studio_server(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., StudioServer]]:
    """``studio_server(mock_delay=0.05) -> StudioServer``: one server per delay, started
    on first use and stopped (SIGTERM, as a process manager does) after the session."""
    running: dict[float, tuple[subprocess.Popen[bytes], StudioServer, str]] = {}

    def get(mock_delay: float = DEFAULT_DELAY) -> StudioServer:
        if mock_delay not in running:
            running[mock_delay] = _start(pg_server_url, tmp_path_factory.mktemp("studio-serve"), mock_delay)
        return running[mock_delay][1]

    try:
        yield get
    finally:
        for proc, _, database in running.values():
            _stop(proc, pg_server_url, database)


def _stop(proc: subprocess.Popen[bytes], pg_server_url: str, database: str | None) -> None:
    """SIGTERM, as a process manager does; then its database goes (if named)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if database is not None:
        drop_database(pg_server_url, database)


@pytest.fixture
def studio(studio_server: Callable[..., StudioServer]) -> StudioServer:
    """The default server, for tests of the built Studio."""
    if not (STUDIO_DIR / "index.html").is_file():
        unavailable(f"the Studio is not built ({STUDIO_DIR} has no index.html): run `make ui`")
    return studio_server()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never `playwright install`).

    Per module, not per session: Playwright's sync API keeps an event loop running in
    this thread while it lives, and the asyncio tests of the modules after this one
    need the thread free (pytest-asyncio refuses to start inside a running loop)."""
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        unavailable(f"Chromium not found at {CHROMIUM}: apt-get install -y --no-install-recommends chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A page in a fresh context (no storage shared between tests). A failing test
    leaves a screenshot of the page beside its other temporary files."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            try:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            except Exception:  # noqa: BLE001 - a screenshot is a courtesy, never a second failure
                pass
        context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Keep each phase's report on the item, so ``page`` knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
