"""Templates render what users write, and refuse what would exhaust the machine."""

from __future__ import annotations

import pytest

from orchestrate.errors import TemplateError
from orchestrate.templates import evaluate, render


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'a' * 3 }}", "aaa"),
        ("{{ [1, 2] * 2 }}", "[1, 2, 1, 2]"),
        ("{% for x in [1, 2, 3] %}{{ x }}{% endfor %}", "123"),
        ("{{ 'hello %s' % 'you' }}", "hello you"),
        ("{{ '{} and {}'.format(1, 2) }}", "1 and 2"),
        ("{{ 'x'|center(5) }}|", "  x  |"),
        ("{{ '%s!'|format('hi') }}", "hi!"),
        ("{{ 2 ** 10 }}", "1024"),
        ("{% set ns = namespace(s='') %}{% for i in range(3) %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.s }}", "012"),
        ("{{ items | join(', ') }}", "a, b"),
    ],
)
def test_ordinary_templates_render(template: str, expected: str) -> None:
    assert render(template, {"items": ["a", "b"]}) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ (((9**99)**99)**99)**99 }}", "larger than 4096 bits"),
        ("{{ '%9999999999d' % 1 }}", "format width"),
        ("{{ '{:>9999999999}'.format(1) }}", "format width"),
        ("{{ 'x'|center(999999999) }}", "width larger"),
        ("{{ 'x'|indent(999999999, true) }}", "width larger"),
        ("{% set x = 'aaaaaaaaaaaaaaaa' %}" + "{% set x = x ~ x %}" * 40 + "{{ x }}", "larger than 1 MiB|more than 2 MiB"),
        ("{% set x = 'aaaaaaaaaaaaaaaa' %}" + "{% set x = x + x %}" * 40 + "{{ x }}", "larger than 1 MiB|more than 2 MiB"),
        ("{{ 'x' * 10000000 }}", "larger than 1 MiB"),
        ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "loops ran more than"),
        ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "larger than 1 MiB|more than 2 MiB"),
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ missing }}", "undefined"),
    ],
)
def test_runaway_templates_fail_the_step_quickly(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, {})


def test_conditions_are_bounded_too() -> None:
    with pytest.raises(TemplateError, match="4096 bits"):
        evaluate("(((9**99)**99)**99)**99 > 1", {})
    assert evaluate("inputs.n > 2", {"inputs": {"n": 3}}) is True
