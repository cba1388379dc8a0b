"""Validation of approval and wait steps and of `on_error`: located, before anything runs."""

from __future__ import annotations

from orchestrate.spec import parse_workflow
from tests.unit.test_spec import problems


def test_wait_takes_exactly_one_of_seconds_and_until() -> None:
    both = problems("name: w\nsteps:\n  - id: a\n    wait: {seconds: 1, until: '2030-01-01T00:00:00Z'}\n")
    assert both == ["wf.yaml:4:5: steps[0].wait: `wait` takes exactly one of `seconds` (how long) or `until` (an ISO 8601 time with its timezone)"]
    assert len(problems("name: w\nsteps:\n  - id: a\n    wait: {}\n")) == 1


def test_a_literal_until_is_checked_when_the_file_is_validated() -> None:
    naive = problems("name: w\nsteps:\n  - id: a\n    wait:\n      until: '2030-01-01T09:00:00'\n")
    assert naive == ["wf.yaml:5:7: steps[0].wait.until: `until` needs a timezone (such as Z or +01:00): '2030-01-01T09:00:00' could be any time"]
    garbage = problems("name: w\nsteps:\n  - id: a\n    wait: {until: tomorrow}\n")
    assert "must be an ISO 8601 time" in garbage[0]
    unknown = problems("name: w\nsteps:\n  - id: a\n    wait: {until: '{{ inputs.when }}'}\n")
    assert unknown[0].startswith("wf.yaml:4:") and "unknown input 'when'" in unknown[0]


def test_approval_timeouts_and_defaults_are_checked_against_the_fields() -> None:
    src = """name: g
steps:
  - id: ask
    approval:
      fields: [{name: ok, type: boolean}]
      default: {ok: "yes", extra: 1}
  - id: late
    approval:
      on_timeout: default
  - id: after
    prompt: "{{ steps.ask.outputs.nope }}"
"""
    found = problems(src)
    assert "wf.yaml:6:7: steps[0].approval.default: `default` is used only with `on_timeout: default`" in found
    assert "wf.yaml:6:7: steps[0].approval.default: the default must match the `fields`: field 'extra': unknown" in found
    assert "wf.yaml:6:7: steps[0].approval.default: the default must match the `fields`: field 'ok': expected boolean, got a string 'yes'" in found
    assert "wf.yaml:9:7: steps[1].approval.on_timeout: `on_timeout` needs a `timeout` (seconds)" in found
    assert any("steps[1].approval.on_timeout: `on_timeout: default` needs a `default`" in p for p in found)
    assert any(p.startswith("wf.yaml:11:") and "step 'ask' has no output 'nope'" in p for p in found)
    # The approval's fields are what later steps read.
    parse_workflow("name: g\nsteps:\n  - id: ask\n    approval: {fields: [{name: ok}]}\n  - {id: b, prompt: '{{ steps.ask.outputs.ok }}'}\n")


def test_on_error_default_matches_the_declared_outputs() -> None:
    src = "name: e\nsteps:\n  - id: a\n    prompt: hi\n    outputs: [{name: n, type: integer}]\n    on_error: {default: {n: many}}\n"
    assert problems(src) == ["wf.yaml:6:16: steps[0].on_error.default: the default must match the step's `outputs`: output 'n': expected integer, got a string 'many'"]
    parse_workflow("name: e\nsteps:\n  - {id: a, prompt: hi, on_error: continue}\n  - {id: b, prompt: hi, on_error: {default: nothing}}\n")


def test_outputs_do_not_apply_to_approval_or_wait_steps() -> None:
    found = problems("name: o\nsteps:\n  - id: a\n    wait: {seconds: 1}\n    outputs: [{name: x}]\n")
    assert found == ["wf.yaml:5:5: steps[0].outputs: `outputs` do not apply to a `wait` step"]
