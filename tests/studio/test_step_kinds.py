"""The Studio's side of step kinds (issue 12), in a real Chromium against a real
`orchestrate serve --mock`: rerun from a step, approvals answered from the run view,
child-run links, kinds in the graph and the editor."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import StudioServer
from .helpers import create_workflow, editor_text, expect_nodes, node, run_status, set_editor_text, sign_in, start_run, wait_run

CHAIN = """name: Rerun chain
inputs:
  topic: {type: string, default: kettles}
steps:
  - id: research
    prompt: "Research {{ inputs.topic }}"
  - id: draft
    prompt: "Draft from: {{ steps.research.output }}"
  - id: polish
    prompt: "Polish: {{ steps.draft.output }}"
"""


def test_rerun_from_a_middle_step_with_an_edited_earlier_output(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, CHAIN)
    source = start_run(studio, wf["id"])
    wait_run(studio, source["id"])
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs/{source['id']}")
    expect(run_status(page)).to_have_text(re.compile("succeeded"))

    node(page, "draft").get_by_role("button").click()
    page.get_by_role("button", name="Rerun from here").click()
    dialog = page.get_by_role("dialog", name="Rerun from draft")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("topic")).to_have_value("kettles")
    dialog.get_by_label("Step", exact=True).select_option("research")
    output = dialog.get_by_label("New output of research")
    expect(output).to_have_value(re.compile("kettles"))  # the recorded answer, to edit
    output.fill("EDITED RESEARCH")
    dialog.get_by_role("button", name="Start the rerun").click()

    # The new run: its own address, its lineage, the reused step marked, the rest run again.
    expect(page).not_to_have_url(re.compile(source["id"]))
    lineage = page.get_by_role("list", name="Lineage")
    expect(lineage).to_contain_text(f"Rerun of run {source['id'][:8]} from draft")
    expect(lineage).to_contain_text("1 step reused")
    expect_nodes(page, {"research": "succeeded", "draft": "succeeded", "polish": "succeeded"})
    expect(node(page, "research").locator(".node-status")).to_contain_text("reused")
    expect(node(page, "draft").locator(".node-status")).not_to_contain_text("reused")
    new_id = page.url.split("/runs/", 1)[1].split("?", 1)[0]
    rerun = wait_run(studio, new_id)
    assert [s["reused"] for s in rerun["steps"]] == [True, False, False]
    # The edited answer flowed downstream: the draft's prompt carries it.
    node(page, "draft").get_by_role("button").click()
    expect(page.get_by_role("article")).to_contain_text("Draft from: EDITED RESEARCH")
    node(page, "research").get_by_role("button").click()
    expect(page.get_by_role("article")).to_contain_text("reused")

    lineage.get_by_role("link", name=f"run {source['id'][:8]}").click()
    expect(page).to_have_url(re.compile(f"/runs/{source['id']}"))
    expect(page.get_by_role("list", name="Lineage")).to_have_count(0)


def test_a_rerun_refused_by_the_server_says_why_beside_the_output(studio: StudioServer, page: Page) -> None:
    structured = CHAIN.replace(
        '    prompt: "Research {{ inputs.topic }}"\n',
        '    prompt: "Research {{ inputs.topic }}"\n    outputs: [{name: audience}]\n',
    ).replace("steps.research.output }}", "steps.research.outputs.audience }}")
    wf = create_workflow(studio, structured)
    source = start_run(studio, wf["id"])
    wait_run(studio, source["id"])
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs/{source['id']}?step=polish")
    page.get_by_role("button", name="Rerun from here").click()
    dialog = page.get_by_role("dialog", name="Rerun from polish")
    dialog.get_by_label("Step", exact=True).select_option("research")
    output = dialog.get_by_label("New output of research")
    # Not JSON: the dialog says so before sending.
    output.fill("{not json")
    dialog.get_by_role("button", name="Start the rerun").click()
    expect(dialog).to_contain_text("The output is not JSON")
    # JSON, but not the declared field: the server's 422 lands beside the output.
    output.fill('{"audiense": "tea lovers"}')
    dialog.get_by_role("button", name="Start the rerun").click()
    expect(dialog.locator(".field-error")).to_contain_text("audience")
    expect(page).to_have_url(re.compile(source["id"]))
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()


KINDS = """# kinds in the editor
name: Kinds
steps:
  - id: fetch   # the API call
    http:
      url: "https://api.example.com/items"
  - id: review
    approval:
      message: Ship it?
"""


def test_the_editor_shows_edits_and_adds_steps_of_every_kind(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, "name: Kinds\nsteps:\n  - id: a\n    prompt: hi\n")
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/edit/{wf['id']}")
    set_editor_text(page, KINDS)
    cards = page.get_by_role("list", name="Steps").get_by_role("listitem")
    expect(cards).to_have_count(2)
    fetch = cards.nth(0)
    expect(fetch.locator(".card-title")).to_contain_text("HTTP")
    expect(fetch.get_by_label("URL")).to_have_value("https://api.example.com/items")
    expect(fetch.get_by_label("Prompt")).to_have_count(0)  # an http step has none
    fetch.get_by_label("URL").fill("https://api.example.com/v2/items")
    expect(cards.nth(1).get_by_label("Message")).to_have_value("Ship it?")
    text = editor_text(page, wf["id"])
    assert 'url: "https://api.example.com/v2/items"' in text
    assert "- id: fetch # the API call" in text or "- id: fetch   # the API call" in text
    assert text.startswith("# kinds in the editor")

    # A new step of another kind, from the menu beside "Add step".
    page.get_by_label("Kind of the new step").select_option(label="Wait")
    page.get_by_role("button", name="Add step").click()
    expect(cards).to_have_count(3)
    expect(cards.nth(2).get_by_label("Seconds")).to_have_value("60")
    cards.nth(2).get_by_label("Seconds").fill("5")
    assert re.search(r"wait:\n +seconds: 5\n", editor_text(page, wf["id"]))

    # The graph labels the kinds.
    page.get_by_role("button", name="Graph").click()
    expect(node(page, "fetch").locator(".node-kind")).to_have_text("HTTP")
    expect(node(page, "review").locator(".node-kind")).to_have_text("Approval")
    expect(node(page, "step_3").locator(".node-kind")).to_have_text("Wait")


def test_schema_completion_offers_the_kinds_and_their_settings(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, "name: Kinds\nsteps:\n  - id: a\n    prompt: hi\n")
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/edit/{wf['id']}")
    set_editor_text(page, "name: Kinds\nsteps:\n  - id: a\n    prompt: hi\n  - id: b\n    ")
    options = page.locator(".cm-tooltip-autocomplete li")
    # The step's keys from /v1/schema: the kinds, then an http step's own settings.
    page.keyboard.type("w")
    page.keyboard.press("Control+Space")
    for key in ("wait", "workflow"):
        expect(options.filter(has_text=re.compile(f"^{key}"))).to_have_count(1)
    page.keyboard.press("Escape")
    page.keyboard.press("Backspace")
    page.keyboard.insert_text("http:\n      ")
    page.keyboard.type("me")
    page.keyboard.press("Control+Space")
    expect(options.filter(has_text=re.compile("^method"))).to_have_count(1)
    options.filter(has_text=re.compile("^method")).click()
    expect(page.locator(".cm-line", has_text="method")).to_have_count(1)
