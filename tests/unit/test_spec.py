"""The workflow language: parsing, located problems, compat formats, inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrate.errors import InputError, SpecError
from orchestrate.spec import load_workflow, parse_pairs, parse_workflow, resolve_inputs

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT.parent / "shared" / "compat" / "orchestrate-v0"


def problems(text: str | bytes) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_workflow(text, "wf.yaml")
    return [p.format("wf.yaml") for p in info.value.problems]


def test_compat_corpus_is_present() -> None:
    assert len(list(COMPAT.glob("*/*.yaml"))) >= 6


@pytest.mark.parametrize("path", sorted(COMPAT.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_compat_file_loads(path: Path) -> None:
    plan = load_workflow(path)
    assert plan.steps


def test_v01_files_run_as_a_conversation() -> None:
    plan = load_workflow(COMPAT / "v0.1" / "debate.yaml")
    assert plan.conversation
    assert plan.steps["summary"].needs == {"con_rebuttal"}
    assert plan.roots() == ["setup_topic"]


def test_v02_user_inputs_become_workflow_inputs_and_sources_become_dependencies() -> None:
    plan = load_workflow(COMPAT / "v0.2" / "user_input_example.yaml")
    assert not plan.conversation
    assert set(plan.workflow.inputs) == {"product_name", "product_category", "target_audience", "key_features"}
    assert all(spec.required for spec in plan.workflow.inputs.values())
    assert plan.steps["generate_seo_tags"].needs == {"generate_description"}
    binding = plan.steps["generate_seo_tags"].bindings["headline"]
    assert (binding.kind, binding.source, binding.field) == ("field", "generate_description", "headline")


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
