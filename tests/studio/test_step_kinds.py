"""The Studio's side of step kinds (issue 12), in a real Chromium against a real
`orchestrate serve --mock`: rerun from a step, approvals answered from the run view,
child-run links, kinds in the graph and the editor."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from orchestrate.spec.plan import RUNNABLE_KINDS

from .conftest import StudioServer
from .helpers import create_workflow, editor_text, expect_nodes, node, run_status, serious_violations, set_editor_text, sign_in, start_run, wait_run


def runnable(kind: str) -> pytest.MarkDecorator:
    """Until the engine runs ``kind`` steps (its branch merged), their browser tests wait."""
    return pytest.mark.skipif(kind not in RUNNABLE_KINDS, reason=f"`{kind}` steps do not run on this branch yet")


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
    assert serious_violations(page) == []
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


SIGN_OFF = """name: Sign-off
inputs:
  product: {type: string, default: a solar kettle}
steps:
  - id: draft
    prompt: "Write a launch note for {{ inputs.product }}"
  - id: review
    needs: [draft]
    approval:
      message: "Ship the note for **{{ inputs.product }}**?"
      fields:
        - {name: reviewer, type: string, description: Who signs off}
        - {name: score, type: integer}
        - {name: urgent, type: boolean}
        - {name: channels, type: array}
  - id: publish
    prompt: "Publish, reviewed by {{ steps.review.outputs.reviewer }} for {{ steps.review.outputs.channels }}"
"""


def _open_waiting(studio: StudioServer, page: Page) -> tuple[dict[str, object], object]:
    wf = create_workflow(studio, SIGN_OFF)
    run = start_run(studio, wf["id"])
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs/{run['id']}")
    expect(node(page, "review").locator(".node-status")).to_have_text(re.compile("waiting for approval"), timeout=30_000)
    expect(node(page, "review").locator(".node-kind")).to_have_text("Approval")
    form = page.get_by_role("region", name="Approval needed: review")
    expect(form).to_contain_text("Ship the note for a solar kettle?")
    expect(form.locator("strong")).to_have_text("a solar kettle")  # the message's Markdown
    expect(run_status(page)).to_have_text(re.compile("running"))
    return run, form


@runnable("approval")
def test_an_approval_answered_from_the_run_view(studio: StudioServer, page: Page) -> None:
    run, form = _open_waiting(studio, page)
    assert serious_violations(page) == []
    form.get_by_label("reviewer").fill("Ada")
    # A field left empty: the server's 422 names it, and the words sit beside it.
    form.get_by_role("button", name="Approve").click()
    score = form.get_by_label("score")
    expect(score).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".field-error")).to_contain_text("score")
    expect(run_status(page)).to_have_text(re.compile("running"))
    score.fill("4")
    form.get_by_label("urgent").check()
    form.get_by_label("channels").fill("email\n\nblog\n")
    form.get_by_role("button", name="Approve").click()

    # The run goes on past the approval and finishes; the form is gone.
    expect_nodes(page, {"review": "succeeded", "publish": "succeeded"})
    expect(run_status(page)).to_have_text(re.compile("succeeded"), timeout=30_000)
    expect(page.get_by_role("region", name="Approval needed: review")).to_have_count(0)
    done = wait_run(studio, str(run["id"]))
    review = next(s for s in done["steps"] if s["id"] == "review")
    assert review["outputs"] == {"reviewer": "Ada", "score": 4, "urgent": True, "channels": ["email", "blog"]}
    node(page, "publish").get_by_role("button").click()
    expect(page.get_by_role("article")).to_contain_text("reviewed by Ada")


@runnable("approval")
def test_an_approval_rejected_with_a_reason(studio: StudioServer, page: Page) -> None:
    run, form = _open_waiting(studio, page)
    form.get_by_label("Reason for rejecting").fill("Too salesy")
    form.get_by_role("button", name="Reject").click()
    expect(run_status(page)).to_have_text(re.compile("failed"), timeout=30_000)
    expect_nodes(page, {"review": "failed"})
    expect(page.locator(".error-box").first).to_contain_text("Too salesy")
    expect(page.get_by_role("region", name="Approval needed: review")).to_have_count(0)
    assert wait_run(studio, str(run["id"]), "failed")["steps"][2]["status"] in ("pending", "cancelled", "skipped")


@runnable("approval")
def test_an_approval_answered_elsewhere_refreshes_the_view(studio: StudioServer, page: Page) -> None:
    wf = create_workflow(studio, SIGN_OFF)
    run = start_run(studio, wf["id"])
    with studio.api() as client:
        for _ in range(100):
            events = client.get(f"/v1/runs/{run['id']}/events", params={"after": 0, "wait": 1}).json()["events"]
            if any(e["type"] == "step.waiting" for e in events):
                break
        else:
            raise AssertionError("the approval step never waited")
    # A tab that hears no events (a stalled connection) keeps showing the form...
    page.route("**/events**", lambda route: None)
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs/{run['id']}")
    form = page.get_by_role("region", name="Approval needed: review")
    expect(form).to_be_visible()
    # ...while someone answers through the API.
    with studio.api() as client:
        answered = client.post(f"/v1/runs/{run['id']}/steps/review/reject", json={"reason": "from the API"})
        assert answered.status_code == 200, answered.text
    form.get_by_label("reviewer").fill("Ada")
    form.get_by_role("button", name="Reject").click()
    # The server's 409: the view says so and shows the run as it now is.
    expect(page.get_by_role("status").filter(has_text="no longer waiting")).to_be_visible()
    expect(form).to_have_count(0)
    expect(run_status(page)).to_have_text(re.compile("failed"))
    expect(page.locator(".error-box").first).to_contain_text("from the API")


CHILD = """name: Child sign-off
inputs:
  text: {type: string, default: a draft}
steps:
  - id: ok
    approval:
      message: "Sign off {{ inputs.text }}?"
"""

PARENT = """name: Parent
steps:
  - id: draft
    prompt: "Draft a note"
  - id: title
    workflow:
      name: Child sign-off
      inputs: {text: "{{ steps.draft.output }}"}
"""


@runnable("workflow")
@runnable("approval")
def test_a_workflow_step_links_to_its_child_run_and_back(studio: StudioServer, page: Page) -> None:
    # The child waits for an approval, so the parent's step waits for its child until then.
    create_workflow(studio, CHILD)
    parent = start_run(studio, create_workflow(studio, PARENT)["id"])
    sign_in(page, studio)
    page.goto(f"{studio.url}/#/runs/{parent['id']}")
    title = node(page, "title")
    expect(title.locator(".node-kind")).to_have_text("Workflow")
    expect(title.locator(".node-status")).to_have_text(re.compile("waiting for child run"), timeout=30_000)

    title.get_by_role("button").click()
    page.get_by_role("article").get_by_role("link", name=re.compile("^Child run")).click()
    lineage = page.get_by_role("list", name="Lineage")
    expect(lineage).to_contain_text(f"Child run of run {parent['id'][:8]}, step title")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Child sign-off")
    page.get_by_role("region", name="Approval needed: ok").get_by_role("button", name="Approve").click()
    expect(run_status(page)).to_have_text(re.compile("succeeded"), timeout=30_000)

    lineage.get_by_role("link", name=f"run {parent['id'][:8]}").click()
    expect(page).to_have_url(re.compile(f"/runs/{parent['id']}\\?step=title"))
    expect(run_status(page)).to_have_text(re.compile("succeeded"), timeout=30_000)
    expect(page.get_by_role("article")).to_contain_text("Workflow step")
