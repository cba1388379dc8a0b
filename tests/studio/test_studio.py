"""The Studio end to end: a real Chromium against a real `orchestrate serve --mock`.
Each test does what a user does, through the page, and checks what they would see."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from .conftest import StudioServer
from .helpers import (
    create_workflow,
    editor_text,
    example,
    expect_nodes,
    node,
    run_status,
    set_editor_text,
    sign_in,
    start_run,
    wait_run,
)

LAUNCH_KIT_STEPS = ["research", "slogan", "email", "landing_page", "review"]


def test_sign_in_with_a_one_time_link_that_then_stops_working(studio: StudioServer, page: Page) -> None:
    link = studio.signin_link()
    assert "#/signin?code=" in link
    page.goto(link)
    expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()
    # The code left the address bar at once; the token is in this tab's storage only.
    assert "code=" not in page.url
    assert page.evaluate("sessionStorage.getItem('orchestrate.token')")
    assert page.evaluate("localStorage.length") == 0

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the Studio")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('orchestrate.token')") is None

    page.goto(link)  # used once already
    expect(page.get_by_role("alert")).to_contain_text("used, expired or unknown")
    # A pasted token works too.
    page.get_by_label("Or paste an access token").fill(studio.token())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()


def test_create_from_a_template_mark_an_error_at_its_line_fix_and_save(studio: StudioServer, page: Page) -> None:
    sign_in(page, studio)
    page.get_by_role("button", name="New workflow").click()
    gallery = page.get_by_role("list", name="Examples")
    card = gallery.get_by_role("listitem").filter(has=page.get_by_role("heading", name="Launch kit"))
    card.get_by_role("button", name="Use this example").click()
    expect(page.get_by_role("heading", name="Launch kit", level=1)).to_be_visible()
    expect(page.locator(".validation")).to_contain_text("Valid: 5 steps")
    expect(page.locator(".meta").first).to_contain_text("version 1")
    workflow_id = page.url.rsplit("/", 1)[1]

    source = editor_text(page, workflow_id)
    lines = source.split("\n")
    line = next(i for i, text in enumerate(lines, 1) if "steps.research.outputs.audience }}, in a" in text)
    lines[line - 1] = lines[line - 1].replace("steps.research.outputs.audience", "steps.reserch.outputs.audience")
    set_editor_text(page, "\n".join(lines))

    problems = page.get_by_role("list", name="Problems")
    expect(problems).to_contain_text(f"Line {line}")
    expect(problems).to_contain_text("reserch")
    # The mark sits on that line of the editor, with its marker in the gutter.
    marked = page.locator(".cm-line").filter(has=page.locator(".cm-lintRange-error"))
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("steps.reserch.outputs.audience")
    gutter_lines = page.locator(".cm-gutter-lint .cm-gutterElement").filter(has=page.locator(".cm-lint-marker-error"))
    expect(gutter_lines).to_have_count(1)
    # Saving an invalid workflow is refused and says why.
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".validation")).to_contain_text("Not saved")

    set_editor_text(page, source.replace("in a {{ inputs.tone }} tone.\"", "in a {{ inputs.tone }} tone, in five words.\""))
    expect(page.locator(".validation")).to_contain_text("Valid: 5 steps")
    expect(page.locator(".cm-lintRange-error")).to_have_count(0)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".validation")).to_contain_text("Saved: version 2")
    expect(page.get_by_role("navigation", name="Open workflows")).not_to_contain_text("unsaved")
    with studio.api() as client:
        stored = client.get(f"/v1/workflows/{workflow_id}").json()
    assert stored["version"] == 2 and "in five words" in stored["source"]


def test_reorder_steps_with_the_cards_keeps_the_comments(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, example("marketing"))
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/edit/{wf['id']}")
    cards = page.get_by_role("list", name="Steps").get_by_role("listitem")
    expect(cards).to_have_count(4)

    def order() -> list[str]:
        return re.findall(r"^  - id: (\w+)", editor_text(page, wf["id"]), re.M)

    # Buttons: `outline` (with its trailing comment) moves below `taglines`.
    cards.filter(has_text="outline").first.get_by_role("button", name="Move down").click()
    expect(cards.nth(2)).to_have_attribute("data-step", "outline")
    assert order() == ["brief", "taglines", "outline", "final_pitch"]
    text = editor_text(page, wf["id"])
    assert re.search(r"- id: outline +# runs in parallel with `taglines`", text)
    assert text.startswith("# The prototype's marketing workflow in the extended language")
    # The editor shows the same text, and the focus stayed on the moved card's button.
    expect(page.locator(".cm-content")).to_contain_text("id: outline")
    expect(cards.nth(2).get_by_role("button", name="Move down")).to_be_focused()

    # Drag and drop: `taglines` onto the first card.
    cards.nth(0).scroll_into_view_if_needed()
    cards.nth(1).locator(".drag-handle").drag_to(cards.nth(0).locator(".card-title"))
    expect(cards.nth(0)).to_have_attribute("data-step", "taglines")
    assert order() == ["taglines", "brief", "outline", "final_pitch"]
    assert "# runs in parallel with `taglines`" in editor_text(page, wf["id"])

    # A card edit becomes YAML and is validated: a bad `needs` is marked.
    needs = cards.nth(0).get_by_label("Needs")
    needs.fill("nowhere")
    needs.press("Enter")
    expect(page.get_by_role("list", name="Problems")).to_contain_text("unknown step 'nowhere'")
    assert "needs: [nowhere]" in editor_text(page, wf["id"])
    needs.fill("")
    needs.press("Enter")
    expect(page.locator(".validation")).to_contain_text("Valid: 4 steps")
    expect(page.get_by_role("navigation", name="Open workflows")).to_contain_text("Marketing campaign (unsaved)")


def test_run_from_the_inputs_form_and_watch_every_node_succeed(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, example("launch_kit"))
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/workflows/{wf['id']}/run")
    product = page.get_by_label("product")
    expect(product).to_have_value("a reusable coffee cup that tracks caffeine")  # the default
    expect(page.get_by_text("What we launch")).to_be_visible()  # the description
    product.fill("a solar kettle")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("region", name="Run graph")).to_be_visible()
    expect_nodes(page, {sid: "succeeded" for sid in LAUNCH_KIT_STEPS})
    expect(run_status(page)).to_have_text(re.compile("succeeded"))
    expect(page.locator(".facts")).to_contain_text("5 of 5 succeeded")
    # The answer of a step: its rendered prompt carries the input from the form.
    node(page, "research").get_by_role("button").click()
    detail = page.get_by_role("article")
    expect(detail).to_contain_text("Who buys a solar kettle?")
    expect(detail.get_by_role("group", name="Structured output of research")).to_contain_text("audience")


@pytest.fixture
def slow(studio: StudioServer, studio_server: Callable[..., StudioServer]) -> StudioServer:
    """A server whose mock model takes 1.5 s per answer, to act on a run mid-way."""
    return studio_server(mock_delay=1.5)


def test_pause_and_resume_a_run(slow: StudioServer, page: Page) -> None:
    wf = create_workflow(slow, example("launch_kit"))
    sign_in(page, slow)
    page.goto(f"{slow.url}/#/workflows/{wf['id']}/run")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("button", name="Pause", exact=True).click()  # while `research`, the first step, runs
    expect(run_status(page)).to_have_text(re.compile("paused"))
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_have_count(0)
    # The steps that were running finish; nothing new starts while paused.
    statuses = page.locator(".react-flow__node .node-status")
    expect(statuses.filter(has_text="running")).to_have_count(0, timeout=20_000)
    # A node's text is its status, then its latency once known (" · 1.5 s"): compare statuses.
    paused = [s.split(" · ")[0] for s in statuses.all_inner_texts()]
    assert any(re.search("queued|pending", s) for s in paused), paused
    page.wait_for_timeout(2500)  # longer than a step takes
    assert [s.split(" · ")[0] for s in statuses.all_inner_texts()] == paused
    expect(run_status(page)).to_have_text(re.compile("paused"))
    page.get_by_role("button", name="Resume", exact=True).click()
    expect_nodes(page, {sid: "succeeded" for sid in LAUNCH_KIT_STEPS})
    expect(run_status(page)).to_have_text(re.compile("succeeded"))


def test_cancel_a_run(slow: StudioServer, page: Page) -> None:
    wf = create_workflow(slow, example("launch_kit"))
    sign_in(page, slow)
    page.goto(f"{slow.url}/#/workflows/{wf['id']}/run")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(run_status(page)).to_have_text(re.compile("cancelled"))
    expect_nodes(page, {"review": "cancelled", "slogan": "cancelled"})
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)


FLAKY = """name: Flaky
description: A step slower than its timeout
steps:
  - id: fast
    prompt: "Say hi"
  - id: slow
    needs: [fast]
    prompt: "Think long"
    timeout: 0.3
    retry: {max_attempts: 2, initial_delay: 1}
"""


def test_retry_a_failed_run(slow: StudioServer, page: Page) -> None:
    wf = create_workflow(slow, FLAKY)
    sign_in(page, slow)
    page.goto(f"{slow.url}/#/workflows/{wf['id']}/run")
    page.get_by_role("button", name="Run", exact=True).click()
    # Between attempts the node says so.
    expect(node(page, "slow").locator(".node-status")).to_contain_text("retrying")
    expect(run_status(page)).to_have_text(re.compile("failed"), timeout=30_000)
    expect_nodes(page, {"fast": "succeeded", "slow": "failed"})
    expect(page.locator(".error-box").first).to_contain_text("timeout")
    node(page, "slow").get_by_role("button").click()
    detail = page.get_by_role("article")
    expect(detail).to_contain_text("step-timeout")
    expect(detail.locator(".facts")).to_contain_text("2")

    page.get_by_role("button", name="Retry", exact=True).click()
    expect(run_status(page)).to_have_text(re.compile("running|queued"))
    expect(run_status(page)).to_have_text(re.compile("failed"), timeout=30_000)
    # The retry ran the failed step again (two more attempts); the succeeded one was kept.
    expect(detail.locator(".facts")).to_contain_text("4")
    expect_nodes(page, {"fast": "succeeded", "slow": "failed"})

    # Opened afresh, a failed run is followed again once retried.
    page.reload()
    expect(run_status(page)).to_have_text(re.compile("failed"))
    page.get_by_role("button", name="Retry", exact=True).click()
    expect(node(page, "slow").locator(".node-status")).to_contain_text("retrying", timeout=30_000)
    expect(run_status(page)).to_have_text(re.compile("failed"), timeout=30_000)
    expect(page.get_by_role("article").locator(".facts")).to_contain_text("6")


UNTRUSTED = """name: Untrusted answers
description: The mock model echoes its prompt, so the answer carries this markup
steps:
  - id: echo
    prompt: "**Bold claim** <img src=x onerror=window.pwned=1><script>window.pwned=2</script> <b>tag</b>"
"""


def test_a_markdown_answer_renders_and_html_in_it_stays_inert(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, UNTRUSTED)
    run = start_run(studio, wf["id"])
    wait_run(studio, run["id"])
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs/{run['id']}")
    page.get_by_role("button", name=re.compile("^echo")).first.click()
    answer = page.locator(".markdown")
    expect(answer.locator("strong")).to_have_text("Bold claim")
    # The HTML is shown as text, not interpreted.
    expect(answer).to_contain_text("<img src=x onerror=window.pwned=1>")
    assert answer.locator("img, script, b").count() == 0
    assert page.evaluate("window.pwned") is None
    expect(page.get_by_role("button", name="Copy answer")).to_be_visible()


def test_export_a_run_as_markdown(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, example("launch_kit"))
    run = start_run(studio, wf["id"], {"product": "a paper plane kit"})
    wait_run(studio, run["id"])
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs/{run['id']}")
    expect(run_status(page)).to_have_text(re.compile("succeeded"))
    with page.expect_download() as download:
        page.get_by_role("button", name="Export Markdown").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".md")
    text = open(path, encoding="utf-8").read()
    assert "a paper plane kit" in text
    for sid in LAUNCH_KIT_STEPS:
        assert sid in text


def test_compare_two_runs(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, example("launch_kit"))
    first = start_run(studio, wf["id"], {"product": "a smart kettle"})
    second = start_run(studio, wf["id"], {"product": "a smart toaster"})
    wait_run(studio, first["id"])
    wait_run(studio, second["id"])
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs?workflow={wf['id']}")
    compare = page.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    for run in (first, second):
        page.get_by_label(f"Select run {run['id'][:8]} for comparison").check()
    compare.click()
    expect(page.get_by_role("heading", name="Compare two runs")).to_be_visible()
    inputs = page.locator("tr.differs")
    expect(inputs).to_have_count(1)
    expect(inputs).to_contain_text("product")
    step = page.locator(".compare-step").filter(has=page.locator("code", has_text=re.compile("^slogan$")))
    expect(step).to_contain_text("answers differ")
    # Word-level: the differing words are marked on each side, the rest is shared text.
    expect(step.locator("del").first).to_be_visible()
    expect(step.locator("ins").first).to_be_visible()
    expect(step.get_by_label("Answer of slogan in run A")).to_contain_text("Mock answer")
    expect(step.locator(".status").first).to_have_text(re.compile("succeeded"))
    expect(step).to_contain_text("tokens")


def test_a_401_returns_to_sign_in_and_keeps_the_unsaved_text(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, example("launch_kit"))
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/edit/{wf['id']}")
    expect(page.locator(".validation")).to_contain_text("Valid")
    page.evaluate("sessionStorage.setItem('orchestrate.token', 'expired.token.here')")
    set_editor_text(page, example("launch_kit") + "\n# a note I must not lose\n")
    expect(page.get_by_role("heading", name="Sign in to the Studio")).to_be_visible()
    expect(page.get_by_text("your unsaved changes are kept")).to_be_visible()
    page.goto(studio.signin_link())
    expect(page.get_by_role("heading", name="Launch kit", level=1)).to_be_visible()
    assert "# a note I must not lose" in editor_text(page, wf["id"])
    expect(page.get_by_role("navigation", name="Open workflows")).to_contain_text("Launch kit (unsaved)")


def test_a_dropped_stream_says_so_and_catches_up(slow: StudioServer, page: Page) -> None:
    wf = create_workflow(slow, example("launch_kit"))
    sign_in(page, slow)
    calls = {"n": 0}

    def flaky(route: Route) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the stream ends early, as a proxy cutting it would
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body="retry: 100\n\n")
        elif calls["n"] in (2, 3):  # and the next two reconnects fail
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r"/v1/runs/[^/]+/events"), flaky)
    page.goto(f"{slow.url}/#/workflows/{wf['id']}/run")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator(".conn")).to_contain_text("Live updates lost: reconnecting")
    expect(page.locator(".conn")).to_contain_text("caught up", timeout=20_000)
    expect_nodes(page, {sid: "succeeded" for sid in LAUNCH_KIT_STEPS})
    assert calls["n"] >= 4


def press_tab_until(page: Page, name: str | re.Pattern[str], limit: int = 80) -> None:
    """Tab forward until the focused element's accessible name matches ``name``."""
    pattern = name if isinstance(name, re.Pattern) else re.compile(f"^{re.escape(name)}$")
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = page.evaluate(
            "() => { const e = document.activeElement; return e ? (e.getAttribute('aria-label') || e.innerText || e.value || '').trim() : '' }"
        )
        if pattern.search(label):
            return
    raise AssertionError(f"no focusable element named {name!r} within {limit} tabs")


def test_the_keyboard_alone_runs_a_workflow_and_opens_a_step(studio: StudioServer, page: Page) -> None:
    create_workflow(studio, example("launch_kit").replace("name: Launch kit", "name: Keyboard kit"))
    sign_in(page, studio)
    page.get_by_label("Search workflows").focus()
    page.keyboard.type("Keyboard")
    expect(page.get_by_role("link", name="Keyboard kit")).to_be_visible()
    press_tab_until(page, "Run")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Run “Keyboard kit”")).to_be_visible()
    product = page.get_by_label("product")
    press_tab_until(page, re.compile("reusable coffee cup"))
    expect(product).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("a keyboard-made kettle")
    press_tab_until(page, "Run")
    page.keyboard.press("Enter")
    expect_nodes(page, {sid: "succeeded" for sid in LAUNCH_KIT_STEPS})
    # The steps are buttons in the tab order: open one and read its answer.
    press_tab_until(page, re.compile(r"^research\s+succeeded"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("article")).to_contain_text("Who buys a keyboard-made kettle?")
    press_tab_until(page, "Close")
    page.keyboard.press("Enter")
    expect(page.get_by_role("article")).to_have_count(0)


def test_the_main_views_have_no_serious_accessibility_violation(studio: StudioServer, page: Page) -> None:
    from .helpers import serious_violations

    wf = create_workflow(studio, example("launch_kit"))
    first = start_run(studio, wf["id"], {"product": "a smart kettle"})
    second = start_run(studio, wf["id"], {"product": "a smart toaster"})
    wait_run(studio, first["id"])
    wait_run(studio, second["id"])
    page.goto(f"{studio.url}/#/signin")
    expect(page.get_by_role("heading", name="Sign in to the Studio")).to_be_visible()
    found = {"sign-in": serious_violations(page)}
    sign_in(page, studio)
    page.get_by_role("button", name="New workflow").click()
    expect(page.get_by_role("list", name="Examples").get_by_role("listitem").first).to_be_visible()
    found["workflows"] = serious_violations(page)
    page.goto(f"{studio.url}/#/edit/{wf['id']}")
    expect(page.locator(".validation")).to_contain_text("Valid")
    found["editor"] = serious_violations(page)
    page.goto(f"{studio.url}/#/workflows/{wf['id']}/run")
    expect(page.get_by_label("product")).to_be_visible()
    found["run form"] = serious_violations(page)
    page.goto(f"{studio.url}/#/runs/{first['id']}?step=research")
    expect(page.get_by_role("article")).to_contain_text("Answer")
    expect_nodes(page, {"review": "succeeded"})
    found["run"] = serious_violations(page)
    page.goto(f"{studio.url}/#/runs")
    expect(page.get_by_role("table")).to_be_visible()
    found["history"] = serious_violations(page)
    page.goto(f"{studio.url}/#/compare?a={first['id']}&b={second['id']}")
    expect(page.get_by_role("heading", name="Compare two runs")).to_be_visible()
    found["compare"] = serious_violations(page)
    bad = {view: v for view, v in found.items() if v}
    assert not bad, json.dumps(bad, indent=1)


def test_workflow_list_search_duplicate_download_delete_and_upload(studio: StudioServer, page: Page, tmp_path: Path) -> None:
    create_workflow(studio, example("debate").replace("name: ", "name: Zebra ", 1))
    sign_in(page, studio)
    page.get_by_label("Search workflows").fill("zebra")
    rows = page.get_by_role("list", name="Workflows").get_by_role("listitem")
    expect(rows).to_have_count(1)
    name = rows.first.locator(".wf-name").inner_text()
    rows.first.get_by_role("button", name="Duplicate").click()
    expect(page.get_by_role("status").filter(has_text="(copy)")).to_be_visible()
    expect(rows).to_have_count(2)  # newest first: the copy on top
    expect(rows.first.locator(".wf-name")).to_have_text(f"{name} (copy)")
    with page.expect_download() as download:
        rows.first.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename.endswith(".yaml")
    assert f"{name} (copy)" in Path(download.value.path()).read_text(encoding="utf-8")

    rows.first.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete")
    dialog.get_by_role("button", name="Cancel").click()
    expect(rows).to_have_count(2)
    rows.first.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".wf-name")).to_have_text(name)

    upload = tmp_path / "uploaded.yaml"
    upload.write_text(example("support_triage").replace("name: ", "name: Zebra upload ", 1), encoding="utf-8")
    page.get_by_role("button", name="New workflow").click()
    page.get_by_label("YAML file to upload").set_input_files(str(upload))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Zebra upload")


def test_closing_a_tab_with_unsaved_changes_asks_first(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, example("launch_kit"))
    other = create_workflow(studio, example("marketing"))
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/edit/{wf['id']}")
    expect(page.locator(".validation")).to_contain_text("Valid")
    page.goto(f"{studio.url}/#/edit/{other['id']}")
    tabs = page.get_by_role("navigation", name="Open workflows")
    expect(tabs.get_by_role("link")).to_have_count(2)
    cards = page.get_by_role("list", name="Steps").get_by_role("listitem")
    cards.first.get_by_label("Model").fill("gpt-4o-mini")
    expect(tabs).to_contain_text("Marketing campaign (unsaved)")
    page.get_by_role("button", name="Close Marketing campaign").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("without saving")
    dialog.get_by_role("button", name="Keep editing").click()
    expect(tabs.get_by_role("link")).to_have_count(2)
    page.get_by_role("button", name="Close Marketing campaign").click()
    dialog.get_by_role("button", name="Save and close").click()
    expect(tabs.get_by_role("link")).to_have_count(1)
    with studio.api() as client:
        stored = client.get(f"/v1/workflows/{other['id']}").json()
    assert stored["version"] == 2 and "model: gpt-4o-mini" in stored["source"]


def test_step_by_step_mode_runs_one_step_per_press(slow: StudioServer, page: Page) -> None:
    wf = create_workflow(slow, FLAKY.replace("    timeout: 0.3\n    retry: {max_attempts: 2, initial_delay: 1}\n", ""))
    sign_in(page, slow)
    page.goto(f"{slow.url}/#/workflows/{wf['id']}/run")
    page.get_by_label("Step by step: pause after each step").check()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(run_status(page)).to_have_text(re.compile("paused"), timeout=20_000)
    expect_nodes(page, {"fast": "succeeded", "slow": "queued"})
    expect(page.get_by_text("Step-by-step mode: the run waits.")).to_be_visible()
    page.get_by_role("button", name="Step", exact=True).click()
    expect(run_status(page)).to_have_text(re.compile("succeeded"), timeout=20_000)
    expect_nodes(page, {"fast": "succeeded", "slow": "succeeded"})
