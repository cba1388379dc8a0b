"""for_each in the language: what validation catches, located in the file."""

from __future__ import annotations

import pytest

from orchestrate.errors import SpecError
from orchestrate.spec import parse_workflow

HEAD = "name: x\nsteps:\n  - {id: r, prompt: hi, outputs: [{name: pains, type: array}]}\n"


def problems(text: str) -> list[tuple[str, int | None, int | None]]:
    with pytest.raises(SpecError) as caught:
        parse_workflow(text)
    return [(p.message, p.line, p.column) for p in caught.value.problems]


def test_a_for_each_step_reads_its_list_and_its_item() -> None:
    plan = parse_workflow(HEAD + "  - {id: d, for_each: '{{ steps.r.outputs.pains }}', concurrency: 3, on_item_error: '10%', prompt: '{{ item }} {{ loop.index }}/{{ loop.length }}'}\n")
    step = plan.steps["d"]
    assert step.needs == {"r"} and step.step.item_concurrency == 3
    assert step.step.tolerated_failures(50) == 5
    assert parse_workflow(HEAD + "  - {id: d, for_each: '{{ [1, 2] }}', prompt: '{{ item }}'}\n").steps["d"].step.item_concurrency == 10


@pytest.mark.parametrize(
    ("step", "message", "column"),
    [
        ("{id: d, prompt: 'about {{ item }}'}", "`item` is only defined in a step with `for_each`", 7),
        ("{id: d, for_each: '{{ [1] }}', when: 'item', prompt: hi}", "`item` is only defined in a step's prompt with `for_each`", 7),
        ("{id: d, prompt: hi, concurrency: 2}", "`concurrency` applies only to a step with `for_each`", 7),
        ("{id: d, for_each: '{{ [1] }}', concurrency: 0, prompt: hi}", "input should be greater than or equal to 1", 7),
        ("{id: d, for_each: '{{ [1] }}', concurrency: -1, prompt: hi}", "input should be greater than or equal to 1", 7),
        ("{id: d, for_each: 'pains', prompt: hi}", "`for_each` must be one expression giving a list", 7),
        ("{id: d, for_each: '{{ steps.nope.output }}', prompt: hi}", "unknown step 'nope'", 7),
    ],
)
def test_bad_for_each_steps_are_located(step: str, message: str, column: int) -> None:
    found = problems(HEAD + f"  -\n{' ' * 4}{step}\n")
    assert len(found) == 1, found
    text, line, _ = found[0]
    assert message in text and line == 5
