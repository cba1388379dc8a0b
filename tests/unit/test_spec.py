"""The workflow language: parsing, located problems, compat formats, inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrate.errors import InputError, SpecError
from orchestrate.spec import load_workflow, parse_pairs, parse_workflow, resolve_inputs
from tests.corpus import PROTOTYPE, file_id, workflow_files

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str | bytes) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_workflow(text, "wf.yaml")
    return [p.format("wf.yaml") for p in info.value.problems]


def test_both_prototype_formats_have_fixtures() -> None:
    assert {p.parent.name for p in workflow_files(PROTOTYPE)} == {"v0.1", "v0.2"}


@pytest.mark.parametrize("path", workflow_files(PROTOTYPE), ids=file_id)
def test_every_prototype_format_file_loads(path: Path) -> None:
    plan = load_workflow(path)
    assert plan.steps


def test_v01_files_run_as_a_conversation() -> None:
    plan = load_workflow(PROTOTYPE / "v0.1" / "book_club.yaml")
    assert plan.conversation
    assert plan.steps["host_wrap_up"].needs == {"second_reader"}
    assert plan.roots() == ["pick_book"]


def test_v02_user_inputs_become_workflow_inputs_and_sources_become_dependencies() -> None:
    plan = load_workflow(PROTOTYPE / "v0.2" / "recipe_card.yaml")
    assert not plan.conversation
    # `diet` is read by two steps: one workflow input.
    assert set(plan.workflow.inputs) == {"ingredients", "diet"}
    assert all(spec.required and spec.type == "string" for spec in plan.workflow.inputs.values())
    assert plan.workflow.inputs["ingredients"].description == "What is in the fridge (comma-separated)"
    assert plan.steps["write_card"].needs == {"plan_dish"}
    assert plan.steps["shopping_note"].needs == {"plan_dish", "write_card"}
    binding = plan.steps["shopping_note"].bindings["missing_items"]
    assert (binding.kind, binding.source, binding.field) == ("field", "plan_dish", "missing_items")
    assert plan.steps["write_card"].bindings["diet"].kind == "input"


def test_v02_input_named_after_its_source_step_is_the_whole_answer() -> None:
    plan = load_workflow(PROTOTYPE / "v0.2" / "haiku.yaml")
    binding = plan.steps["critique"].bindings["write_haiku"]
    assert (binding.kind, binding.source, binding.field) == ("output", "write_haiku", None)
    assert plan.workflow.version == "1.0.0"  # a bare 1.0.0 is a string in YAML


def test_v02_step_with_outputs_and_no_inputs_is_a_root() -> None:
    plan = load_workflow(PROTOTYPE / "v0.2" / "job_post.yaml")
    assert plan.roots() == ["draft_role"]
    assert [o.name for o in plan.steps["draft_role"].step.outputs] == ["title", "team", "first_months"]
    assert plan.steps["write_post"].bindings["team"].field == "team"


def test_independent_steps_with_references_run_in_parallel() -> None:
    plan = load_workflow(ROOT / "examples" / "launch_kit.yaml")
    assert plan.steps["slogan"].needs == plan.steps["email"].needs == {"research"}
    assert plan.steps["review"].needs == {"slogan", "email", "landing_page"}


def test_every_problem_is_reported_at_once_with_lines() -> None:
    found = problems(
        "name: x\n"
        "steps:\n"
        "  - id: a\n"
        "    promt: hi\n"
        "  - id: a\n"
        "    prompt: '{{ steps.zz.output }} {{ inputs.nope }}'\n"
        "  - id: b\n"
        "    prompt: '{{ b2 }}'\n"
        "    needs: [q]\n"
    )
    assert "wf.yaml:4:5: steps[0].promt: unknown field 'promt'; did you mean 'prompt'?" in found
    assert "wf.yaml:5:5: steps[1].id: duplicate step id 'a' (first used by steps[0])" in found
    assert any("steps[1].prompt: unknown step 'zz'" in p for p in found)
    assert any("steps[1].prompt: unknown input 'nope'" in p for p in found)
    assert any(p.startswith("wf.yaml:8:") and "unknown name 'b2'" in p for p in found)
    assert any("steps[2].needs[0]: unknown step 'q'" in p for p in found)


def test_cycles_are_named() -> None:
    found = problems("name: x\nsteps:\n  - {id: a, prompt: '{{ c }}'}\n  - {id: b, prompt: '{{ a }}'}\n  - {id: c, prompt: '{{ b }}'}\n")
    assert any("dependency cycle: a -> c -> b -> a" in p or "dependency cycle" in p and "a" in p for p in found)


def test_unknown_output_field_suggests_the_near_miss() -> None:
    found = problems(
        "name: x\nsteps:\n"
        "  - id: a\n    prompt: p\n    outputs: [{name: audience}]\n"
        "  - id: b\n    prompt: '{{ steps.a.outputs.audiense }}'\n"
    )
    assert any("step 'a' has no output 'audiense'; did you mean 'audience'?" in p for p in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", "invalid YAML"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("", "the file is empty"),
        ("name: x\nname: y\nsteps: []\n", "duplicate key 'name'"),
        ("name: x\nsteps:\n  - {id: a, prompt: '{% for %}'}\n", "template syntax error"),
        ("name: x\nsteps:\n  - {id: a, prompt: \"{{ ''.__class__.__mro__ }}\"}\n", "access to '__class__' is not allowed"),
        ("name: x\nsteps:\n  - {id: 'bad-id', prompt: p}\n", "must start with a letter"),
        ("name: x\nsteps:\n  - {id: a, prompt: p, timeout: -1}\n", "steps[0].timeout"),
        ("name: x\nsteps:\n  - {id: a, prompt: p, when: 'steps.a.status =='}\n", "template syntax error"),
        ("name: x\nsteps: {}\n", "steps: must be a list"),
        ("name: x\nsteps:\n  - {id: a, prompt: !!python/object:os.system ls}\n", "invalid value"),
    ],
)
def test_bad_documents_get_a_located_message(text: str, expected: str) -> None:
    assert any(expected in p for p in problems(text)), problems(text)


def test_alias_bombs_are_refused() -> None:
    text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        text += f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    assert any("expands to more than" in p for p in problems(text))


def test_files_over_one_mebibyte_and_non_utf8_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n#" + "x" * (1024 * 1024) + "\n")
    with pytest.raises(SpecError, match="at most 1 MiB"):
        load_workflow(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin.yaml:1:10: not valid UTF-8"):
        load_workflow(latin)


INPUTS = """
name: typed
inputs:
  n: {type: integer}
  ratio: {type: number, default: 0.5}
  tags: {type: array, default: []}
  flag: {type: boolean, default: false}
steps:
  - {id: a, prompt: "{{ inputs.n }} {{ inputs.ratio }} {{ inputs.tags }} {{ inputs.flag }}"}
"""


def test_inputs_are_typed_defaulted_and_checked() -> None:
    wf = parse_workflow(INPUTS).workflow
    assert resolve_inputs(wf, parse_pairs(wf, ["n=3", "tags=a,b", "flag=yes"])) == {"n": 3, "ratio": 0.5, "tags": ["a", "b"], "flag": True}
    with pytest.raises(InputError) as info:
        resolve_inputs(wf, {"m": 1, "ratio": "high"})
    text = "\n".join(info.value.problems)
    assert "input 'm': unknown input; declared inputs: flag, n, ratio, tags" in text
    assert "input 'ratio': expected number" in text
    assert "input 'n': required but not given" in text
    with pytest.raises(InputError, match="expected integer"):
        parse_pairs(wf, ["n=abc"])
    with pytest.raises(InputError, match="expected name=value"):
        parse_pairs(wf, ["n"])


def test_a_default_of_another_type_than_its_input_is_a_located_problem() -> None:
    found = problems(
        "name: x\n"
        "inputs:\n"
        "  rounds: {type: integer, default: three}\n"
        "  who:\n"
        "    type: string\n"
        "    default: 42\n"
        "  topic: {type: string, default: null}\n"
        "  flags: {type: array, default: {a: 1}}\n"
        "  ratio: {type: number, default: true}\n"
        "steps:\n"
        "  - {id: a, prompt: 'hi {{ inputs.rounds }}'}\n"
    )
    assert found == [
        "wf.yaml:3:27: inputs.rounds.default: the default must be of the input's type integer, not a string 'three'",
        "wf.yaml:6:5: inputs.who.default: the default must be of the input's type string, not a number 42",
        "wf.yaml:7:25: inputs.topic.default: the default must be of the input's type string, not null",
        "wf.yaml:8:24: inputs.flags.default: the default must be of the input's type array, not an object",
        "wf.yaml:9:25: inputs.ratio.default: the default must be of the input's type number, not a boolean True",
    ]


def test_defaults_of_their_inputs_type_are_accepted() -> None:
    wf = parse_workflow(
        "name: x\ninputs:\n"
        "  n: {type: integer, default: 2.0}\n"  # a whole float is an integer, as when given
        "  ratio: {type: number, default: 3}\n"
        "  tags: {type: array, default: []}\n"
        "  extra: {type: object, default: {}}\n"
        "  flag: {type: boolean, default: false}\n"
        "steps:\n  - {id: a, prompt: hi}\n"
    ).workflow
    assert resolve_inputs(wf, {}) == {"n": 2.0, "ratio": 3, "tags": [], "extra": {}, "flag": False}


def test_characters_yaml_forbids_are_located() -> None:
    found = problems("name: x\nsteps:\n  - {id: a, prompt: \"\x07\"}\n")
    assert found == ["wf.yaml:3:22: invalid YAML: character U+0007 is not allowed; remove it or quote it as an escape"]


def test_nul_characters_and_deep_nesting_are_refused_with_a_location() -> None:
    assert problems('name: x\nsteps:\n  - {id: a, prompt: "a\\0b"}\n') == ["wf.yaml:3:21: steps[0].prompt: the NUL character (U+0000) is not allowed"]
    assert any("nested deeper" in p for p in problems("[" * 50000))
    deep = "name: x\nsteps:\n  - id: a\n    prompt: \"{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}\"\n"
    assert any("nested too deeply" in p or "template" in p for p in problems(deep))
    wf = parse_workflow("name: x\ninputs: {t: {}}\nsteps:\n  - {id: a, prompt: '{{ inputs.t }}'}\n").workflow
    with pytest.raises(InputError, match="NUL character"):
        resolve_inputs(wf, {"t": "a\x00b"})
