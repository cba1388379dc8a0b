"""The Studio of a Supabase project, end to end: `orchestrate serve` configured for a
stand-in project (tests/fakes/supabase_project.py: the GoTrue stand-in and the
Realtime stand-in on one URL) on a database that broadcasts, a Storage bucket in moto's
S3, and Chromium running the real supabase-js. The Studio signs in through Supabase
Auth, follows runs through Realtime (protocol 2.0.0, binary broadcast frames) and
stores exports."""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect

from orchestrate.api.studio import STUDIO_DIR
from tests.fakes.supabase_project import SupabaseProject, supabase_project
from tests.postgres_fixtures import create_database, drop_database
from tests.realtime_fixtures import REALTIME_SCHEMA

from .conftest import ROOT, StudioServer, _start, _stop, unavailable
from .helpers import example, expect_nodes, run_status

pytestmark = pytest.mark.postgres

SECRET = "studio-supabase-test-jwt-secret-0123456789abcdef"
PUBLISHABLE = "sb_publishable_studio_test"
PASSWORD = "correct horse battery staple"
STEPS = ["research", "slogan", "email", "landing_page", "review"]
SHOTS = ROOT / "docs" / "studio"


@dataclass
class Hosted:
    studio: StudioServer
    project: SupabaseProject
    bucket: str

    def user(self) -> str:
        """A new user of the project's Auth; returns their email."""
        email = f"{uuid.uuid4().hex[:8]}@example.test"
        self.project.auth.create_user(email, PASSWORD)
        return email

    def token(self, email: str) -> str:
        """An access token from the project's Auth (a password grant, as supabase-js does)."""
        response = httpx.post(
            f"{self.project.url}/auth/v1/token", params={"grant_type": "password"},
            json={"email": email, "password": PASSWORD}, headers={"apikey": PUBLISHABLE},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def api(self, email: str) -> httpx.Client:
        return httpx.Client(base_url=self.studio.url, headers={"Authorization": f"Bearer {self.token(email)}"}, timeout=30)


@pytest.fixture(scope="module")
def hosted(pg_server_url: str, pg_url: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    """pg_url first: the cluster-wide API roles exist then."""
    if not (STUDIO_DIR / "index.html").is_file():
        unavailable(f"the Studio is not built ({STUDIO_DIR} has no index.html): run `make ui`")
    from orchestrate.db.migrate import migrate

    database = create_database(pg_server_url, prefix="orchestrate_studio_sb")
    with psycopg.connect(database, autocommit=True) as conn:  # as on Supabase: Realtime's schema first
        conn.execute(REALTIME_SCHEMA.read_text(encoding="utf-8"))  # type: ignore[arg-type,unused-ignore]
    migrate(database)
    bucket = f"results-{uuid.uuid4().hex[:8]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    try:
        with supabase_project(database, SECRET, PUBLISHABLE) as project:
            extra = {
                "SUPABASE_URL": project.url, "SUPABASE_JWT_SECRET": SECRET, "SUPABASE_PUBLISHABLE_KEY": PUBLISHABLE,
                "ORCHESTRATE_STORAGE_S3_ENDPOINT": s3_endpoint, "ORCHESTRATE_STORAGE_BUCKET": bucket,
                "ORCHESTRATE_STORAGE_REGION": "us-east-1",
                "ORCHESTRATE_STORAGE_ACCESS_KEY_ID": "test", "ORCHESTRATE_STORAGE_SECRET_ACCESS_KEY": "test",
            }  # fmt: skip
            proc, studio, _ = _start(pg_server_url, tmp_path_factory.mktemp("studio-sb"), 0.4, database, extra)
            project.auth.site_url = studio.url
            project.auth.redirect_urls.append(f"{studio.url}/")  # the project's allowed Auth redirect URL
            try:
                yield Hosted(studio, project, bucket)
            finally:
                _stop(proc, pg_server_url, None)
    finally:  # after the stand-ins let go of it
        drop_database(pg_server_url, database)


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def sign_in(page: Page, hosted: Hosted, email: str) -> None:
    page.goto(hosted.studio.url)
    form = page.get_by_role("form", name="Sign in with Supabase")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()
    expect(page.locator(".topbar .user")).to_have_text(email)


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def stored_session(page: Page) -> dict[str, Any]:
    """supabase-js's session in the tab's sessionStorage."""
    raw = page.evaluate("sessionStorage.getItem('orchestrate.supabase')")
    assert raw, "supabase-js keeps no session"
    return dict(json.loads(raw))


def test_sign_in_with_a_password_follow_a_run_through_realtime_and_sign_out(hosted: Hosted, page: Page, tmp_path: Path) -> None:
    email = hosted.user()
    with hosted.api(email) as client:
        wf = client.post("/v1/workflows", content=example("launch_kit"), headers={"Content-Type": "application/yaml"}).json()
    page.goto(hosted.studio.url)
    expect(page.get_by_role("heading", name="Sign in to the Studio")).to_be_visible()
    # The README's picture (`STUDIO_SCREENSHOTS=1` rewrites docs/studio, as test_screenshots does).
    page.screenshot(path=str((SHOTS if os.environ.get("STUDIO_SCREENSHOTS") else tmp_path) / "supabase-signin.png"))
    sign_in(page, hosted, email)

    # Step by step, so that the progress to watch comes after the subscription, however
    # slow the machine: each press runs one step.
    page.goto(f"{hosted.studio.url}/#/workflows/{wf['id']}/run")
    page.get_by_label("Step by step: pause after each step").check()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("region", name="Run graph")).to_be_visible()
    run_id = page.url.rsplit("/runs/", 1)[1].split("?")[0]
    expect(page.locator(".conn")).to_have_attribute("data-transport", "realtime")
    expect(page.locator(".conn")).to_contain_text("Live (Realtime).")  # subscribed
    expect(page.locator(".facts")).to_contain_text(f"1 of {len(STEPS)} succeeded")
    with hosted.api(email) as client:
        subscribed_at = client.get(f"/v1/runs/{run_id}/events").json()["events"][-1]["seq"]
    for done in range(2, len(STEPS) + 1):
        page.get_by_role("button", name="Step", exact=True).click()
        expect(page.locator(".facts")).to_contain_text(f"{done} of {len(STEPS)} succeeded")
    expect_nodes(page, {sid: "succeeded" for sid in STEPS})
    expect(run_status(page)).to_have_text(re.compile("succeeded"))
    page.screenshot(path=str(tmp_path / "run-realtime.png"))

    # The progress came over the websocket: supabase-js joined the private topic with
    # protocol 2.0.0 and the stand-in pushed every later event to it as a binary frame.
    topic = f"run:{run_id}"
    joins = [j for j in hosted.project.realtime.joins if j.topic == topic]
    assert joins and all(j.ok and j.private and j.vsn == "2.0.0" for j in joins), joins
    with hosted.api(email) as client:
        events = client.get(f"/v1/runs/{run_id}/events").json()["events"]
    assert events[-1]["type"] == "run.succeeded"
    later = [e["seq"] for e in events if e["seq"] > subscribed_at]
    # Most of them came as binary pushes (at least one per step): a fall-back to polling
    # pushes none. A brief rejoin may leave a gap, which the catch-up by seq fills.
    pushed = set(later) & set(hosted.project.realtime.pushed_binary[topic])
    assert len(later) >= len(STEPS) and len(pushed) >= len(STEPS), (later, sorted(pushed))

    # Signing out ends the session at the project: its refresh token is refused, and the
    # sign-in form is back.
    session = stored_session(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("form", name="Sign in with Supabase")).to_be_visible()
    session_id = claims(session["access_token"])["session_id"]
    page.wait_for_function("() => true")  # a tick for supabase-js's logout call
    for _ in range(100):
        if not hosted.project.auth.session_active(session_id):
            break
        page.wait_for_timeout(100)
    assert not hosted.project.auth.session_active(session_id)
    refresh = httpx.post(
        f"{hosted.project.url}/auth/v1/token", params={"grant_type": "refresh_token"},
        json={"refresh_token": session["refresh_token"]}, headers={"apikey": PUBLISHABLE},
    )  # fmt: skip
    assert refresh.status_code == 400, refresh.text
    page.reload()
    expect(page.get_by_role("form", name="Sign in with Supabase")).to_be_visible()


def test_another_users_run_is_refused_by_realtime(hosted: Hosted, page: Page, tmp_path: Path) -> None:
    owner, other = hosted.user(), hosted.user()
    with hosted.api(owner) as client:
        wf = client.post("/v1/workflows", content=example("launch_kit"), headers={"Content-Type": "application/yaml"}).json()
        run = client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {}}).json()
    sign_in(page, hosted, other)
    page.goto(f"{hosted.studio.url}/#/runs/{run['id']}")
    expect(page.get_by_text(re.compile(r"Realtime refused to show run .*not yours"))).to_be_visible()
    expect(page.get_by_role("region", name="Run graph")).to_have_count(0)  # no steps, no events
    page.screenshot(path=str(tmp_path / "refused.png"))
    topic = f"run:{run['id']}"
    refusals = [j for j in hosted.project.realtime.joins if j.topic == topic and not j.ok]
    assert refusals and (refusals[0].reason or "").startswith("Unauthorized"), refusals
    with hosted.api(owner) as client:  # the owner's run went on meanwhile; nothing reached the other user
        assert client.get(f"/v1/runs/{run['id']}").status_code == 200
    assert hosted.project.realtime.joined(topic) == 0


def test_a_dropped_realtime_connection_rejoins_and_catches_up_what_it_missed(hosted: Hosted, page: Page) -> None:
    email = hosted.user()
    with hosted.api(email) as client:
        wf = client.post("/v1/workflows", content=example("launch_kit"), headers={"Content-Type": "application/yaml"}).json()
        run = client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {}, "mode": "step"}).json()
    topic, realtime = f"run:{run['id']}", hosted.project.realtime
    sign_in(page, hosted, email)
    page.goto(f"{hosted.studio.url}/#/runs/{run['id']}")
    expect(page.locator(".conn")).to_have_attribute("data-transport", "realtime")
    expect(run_status(page)).to_have_text(re.compile("paused"))  # step mode: after the first step
    expect_nodes(page, {"research": "succeeded"})

    realtime.accepting = False  # an outage: the socket drops and cannot come back for now
    realtime.drop_from_thread()
    try:
        expect(page.locator(".conn")).to_contain_text("Live updates lost: reconnecting")
        with hosted.api(email) as client:  # the run goes to its end while the Studio cannot hear of it
            for _ in range(100):
                status = client.get(f"/v1/runs/{run['id']}").json()["status"]
                if status == "succeeded":
                    break
                if status == "paused":  # step by step: one step per press
                    assert client.post(f"/v1/runs/{run['id']}/step").status_code == 200
                seen = client.get(f"/v1/runs/{run['id']}/events").json()["events"][-1]["seq"]
                client.get(f"/v1/runs/{run['id']}/events", params={"after": seen, "wait": 2})  # until it moves
            events = client.get(f"/v1/runs/{run['id']}/events").json()["events"]
        assert events[-1]["type"] == "run.succeeded"
    finally:
        realtime.accepting = True
    # supabase-js reconnects and joins again; the catch-up by seq brings what was missed.
    expect(page.locator(".conn")).to_contain_text("caught up", timeout=30_000)
    expect_nodes(page, {sid: "succeeded" for sid in STEPS})
    expect(run_status(page)).to_have_text(re.compile("succeeded"))
    missed = {e["seq"] for e in events} - set(realtime.pushed[topic])
    assert events[-1]["seq"] in missed  # never pushed: only the catch-up could show it
    assert len([j for j in realtime.joins if j.topic == topic and j.ok]) >= 2


def test_sign_in_with_a_magic_link_which_then_stops_working(hosted: Hosted, page: Page) -> None:
    email = hosted.user()
    page.goto(hosted.studio.url)
    form = page.get_by_role("form", name="Sign in with Supabase")
    form.get_by_label("Email").fill(email)
    form.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("status").filter(has_text="A sign-in link is on its way")).to_be_visible()
    link = next(m for m in reversed(hosted.project.auth.outbox) if m.email == email)
    assert link.redirect_to == f"{hosted.studio.url}/"

    page.goto(link.url)  # the project verifies it and returns the session in the fragment
    expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()
    expect(page.locator(".topbar .user")).to_have_text(email)
    assert "access_token" not in page.url  # supabase-js took it out of the address bar

    page.get_by_role("button", name="Sign out").click()
    page.goto(link.url)  # used once already
    expect(page.get_by_role("alert")).to_contain_text("The sign-in link did not work: Email link is invalid or has expired")


def test_store_an_export_and_download_it_and_a_storage_outage_leaves_the_plain_export(
    hosted: Hosted, page: Page, tmp_path: Path, s3_endpoint: str
) -> None:
    email = hosted.user()
    with hosted.api(email) as client:
        wf = client.post("/v1/workflows", content=example("launch_kit"), headers={"Content-Type": "application/yaml"}).json()
        run = client.post(f"/v1/workflows/{wf['id']}/runs", json={"inputs": {}}).json()
        for _ in range(120):
            if client.get(f"/v1/runs/{run['id']}/events", params={"wait": 1}).json()["finished"]:
                break
        plain = client.get(f"/v1/runs/{run['id']}/export", params={"format": "md"}).text
    sign_in(page, hosted, email)
    page.goto(f"{hosted.studio.url}/#/runs/{run['id']}")
    expect(run_status(page)).to_have_text(re.compile("succeeded"))
    page.get_by_role("button", name="Store export").click()
    link = page.get_by_role("link", name="download the stored export")
    expect(link).to_be_visible()
    expect(page.locator(".stored-export")).to_contain_text(f"{run['id']}.md")
    stored = httpx.get(str(link.get_attribute("href")))  # a presigned URL: no token needed
    page.screenshot(path=str(tmp_path / "stored.png"))
    assert stored.status_code == 200
    assert stored.text == plain

    # The bucket is gone (an outage as the API sees it): the problem's message, and the
    # plain download still works.
    s3 = s3_client(s3_endpoint)
    for item in s3.list_objects_v2(Bucket=hosted.bucket).get("Contents", []):
        s3.delete_object(Bucket=hosted.bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=hosted.bucket)
    try:
        page.get_by_role("button", name="Store export").click()
        expect(page.get_by_role("alert")).to_contain_text("Storage is unavailable: the export was not stored; download it instead")
        expect(link).to_have_count(0)
        with page.expect_download() as download:
            page.get_by_role("button", name="Export Markdown").click()
        assert Path(download.value.path()).read_text(encoding="utf-8") == plain
    finally:
        s3.create_bucket(Bucket=hosted.bucket)


def test_the_session_is_refreshed_before_it_expires(hosted: Hosted, page: Page) -> None:
    # Tokens that live 60 s are inside supabase-js's refresh margin (90 s) from the start:
    # the first calls already refresh, and every refresh rotates the refresh token.
    email = hosted.user()
    hosted.project.auth.token_ttl = 60
    try:
        before = hosted.project.auth.refreshes
        sign_in(page, hosted, email)
        expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()
        page.get_by_role("link", name="Runs").click()
        expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
        assert hosted.project.auth.refreshes > before
        # Still signed in with a live session: no refresh token was used twice (which the
        # project answers by ending the session), and the API took the refreshed tokens.
        session = stored_session(page)
        assert hosted.project.auth.session_active(claims(session["access_token"])["session_id"])
        expect(page.locator(".topbar .user")).to_have_text(email)
        with httpx.Client(base_url=hosted.studio.url, headers={"Authorization": f"Bearer {session['access_token']}"}) as client:
            assert client.get("/v1/runs").status_code == 200
    finally:
        hosted.project.auth.token_ttl = 3600
