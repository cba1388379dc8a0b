"""The harness itself: a real browser opens the server's `/` and sees the Studio, or,
without a build, the one-line hint, never an error page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrate.api.studio import NOT_BUILT, STUDIO_DIR

from .conftest import StudioServer


def test_the_root_opens_in_a_browser(studio_server: Callable[..., StudioServer], page: Any) -> None:
    server = studio_server()
    response = page.goto(server.url + "/")
    assert response is not None and response.status == 200
    if (STUDIO_DIR / "index.html").is_file():
        page.wait_for_function("document.querySelector('#root')?.childElementCount > 0")
    else:
        assert page.locator("body").inner_text().strip() == NOT_BUILT
    # The API beside it is untouched.
    health = page.goto(server.url + "/v1/health")
    assert health is not None and health.status == 200 and health.json()["status"] == "ok"
