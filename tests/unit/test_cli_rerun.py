"""`orchestrate run FILE --rerun result.json --from STEP`: a local rerun of an earlier
result, reusing the answers before STEP (and an edited one), as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli import orchestrate

FLOW = """\
name: chain
inputs: {topic: {default: tea}}
steps:
  - {id: research, prompt: "About {{ inputs.topic }}", outputs: [{name: audience}]}
  - {id: draft, prompt: "Draft for {{ steps.research.outputs.audience }}"}
  - {id: polish, prompt: "Polish {{ draft }}"}
"""


def test_a_local_rerun_reuses_and_edits(tmp_path: Path) -> None:
    flow, first = tmp_path / "flow.yaml", tmp_path / "first.json"
    flow.write_text(FLOW)
    assert orchestrate("run", str(flow), "--mock", "--output", str(first)).returncode == 0
    (tmp_path / "research.json").write_text('{"audience": "owls"}')
    proc = orchestrate("run", str(flow), "--mock", "--rerun", str(first), "--from", "draft", "--output-of", f"research=@{tmp_path / 'research.json'}", "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    steps = {s["id"]: s for s in run["steps"]}
    assert steps["research"]["reused"] and steps["research"]["outputs"] == {"audience": "owls"} and steps["research"]["usage"]["total_tokens"] == 0
    assert steps["draft"]["prompt"] == "Draft for owls" and not steps["draft"]["reused"]
    assert run["rerun_of"]["from"] == "draft" and run["rerun_of"]["run_id"] == json.loads(first.read_text())["id"]
    assert "research: reused (edited answer)" in proc.stderr


def test_bad_local_reruns_exit_2(tmp_path: Path) -> None:
    flow, first = tmp_path / "flow.yaml", tmp_path / "first.json"
    flow.write_text(FLOW)
    assert orchestrate("run", str(flow), "--mock", "--output", str(first)).returncode == 0
    for args, message in [
        (("--rerun", str(first), "--from", "drat"), "unknown step 'drat'; did you mean 'draft'?"),
        (("--rerun", str(first), "--from", "draft", "--output-of", "polish=x"), "runs again in this rerun"),
        (("--rerun", str(first), "--from", "draft", "--output-of", "research={oops"), "not valid JSON"),
        (("--rerun", str(tmp_path / "missing.json"), "--from", "draft"), "file not found"),
        (("--rerun", str(flow), "--from", "draft"), "not a result written by"),
        (("--from", "draft"), "go together"),
    ]:
        proc = orchestrate("run", str(flow), "--mock", *args)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_a_workflow_step_runs_a_workflow_file_as_a_child(tmp_path: Path) -> None:
    flow = tmp_path / "parent.yaml"
    flow.write_text("name: parent\nsteps:\n  - {id: a, prompt: hi}\n  - {id: sub, workflow: {name: Kid, inputs: {x: '{{ a }}'}}}\n")
    missing = orchestrate("run", str(flow), "--mock")
    assert missing.returncode == 2 and "steps[1].workflow.name: no workflow named 'Kid'" in missing.stderr and "--workflows" in missing.stderr
    library = tmp_path / "lib"
    library.mkdir()
    (library / "kid.yaml").write_text("name: Kid\ninputs: {x: {type: string}}\nsteps:\n  - {id: k, prompt: 'kid {{ inputs.x }}'}\n")
    proc = orchestrate("run", str(flow), "--mock", "--workflows", str(library), "--json")
    assert proc.returncode == 0, proc.stderr
    sub = {s["id"]: s for s in json.loads(proc.stdout)["steps"]}["sub"]
    assert sub["status"] == "succeeded" and sub["child_run_id"] and list(sub["outputs"]) == ["k"]
