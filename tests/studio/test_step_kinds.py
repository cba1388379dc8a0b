"""The Studio's side of step kinds (issue 12), in a real Chromium against a real
`orchestrate serve --mock`: rerun from a step, approvals answered from the run view,
child-run links, kinds in the graph and the editor."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import StudioServer
from .helpers import create_workflow, expect_nodes, node, run_status, sign_in, start_run, wait_run

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
