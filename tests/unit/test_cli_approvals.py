"""`orchestrate run` answers approvals from its options (or the mock), and refuses up
front a run nothing could answer."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli import ROOT, orchestrate

EXAMPLE = str(ROOT / "examples" / "approval.yaml")


def test_reject_and_approve_from_the_command_line() -> None:
    rejected = orchestrate("run", EXAMPLE, "--mock", "--json", "--reject", "sign_off", "--reason", "too loud")
    assert rejected.returncode == 0, rejected.stderr
    steps = {s["id"]: s for s in json.loads(rejected.stdout)["steps"]}
    assert steps["sign_off"]["status"] == "failed" and steps["sign_off"]["error"]["message"] == "rejected: too loud"
    assert steps["publish"]["status"] == "skipped" and steps["revise"]["status"] == "succeeded"

    approved = orchestrate(
        "run", EXAMPLE, "--mock", "--json", "--approve", "sign_off", "--field", "sign_off.headline=Cafe opens", "--field", "sign_off.embargo_hours=4"
    )
    assert approved.returncode == 0, approved.stderr
    steps = {s["id"]: s for s in json.loads(approved.stdout)["steps"]}
    assert steps["sign_off"]["outputs"] == {"headline": "Cafe opens", "embargo_hours": 4}
    assert 'headline "Cafe opens"' in steps["publish"]["prompt"] and "embargoed 4 hours" in steps["publish"]["prompt"]

    mistyped = orchestrate("run", EXAMPLE, "--mock", "--approve", "sign_off", "--field", "sign_off.embargo_hours=soon")
    assert mistyped.returncode == 2 and "embargo_hours" in mistyped.stderr and "Traceback" not in mistyped.stderr


def test_an_approval_nothing_can_answer_is_refused_before_the_run(tmp_path: Path) -> None:
    flow = tmp_path / "gate.yaml"
    flow.write_text("name: gate\nsteps:\n  - id: ask\n    approval: {message: 'ok?'}\n")
    proc = orchestrate("run", str(flow))
    assert proc.returncode == 2
    assert "step 'ask' waits for an approval" in proc.stderr and "--approve ask" in proc.stderr
