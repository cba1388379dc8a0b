"""Templates render what users write, and refuse what would exhaust the machine."""

from __future__ import annotations

import pytest

from orchestrate.errors import TemplateError
from orchestrate.sandbox import MAX_TEXT
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
        # Filters, methods and statements a prompt uses, each sized by the sandbox.
        ("{{ text | wordwrap(11) }}", "hello world\nfoo bar"),
        ("{{ text | truncate(9) }}", "hello..."),
        ("{{ text | title }}|{{ text | upper }}", "Hello World Foo Bar|HELLO WORLD FOO BAR"),
        ("{{ text | replace('o', '0') }}", "hell0 w0rld f00 bar"),
        ("{{ 'a\nb' | indent(2) }}|{{ 'a' | indent('> ', true) }}", "a\n  b|> a"),
        ("{{ text | center(23) }}|", "  hello world foo bar  |"),
        ("{{ [1, 2, 3] | batch(2, 0) | list }} {{ [1, 2, 3] | slice(2) | list }}", "[[1, 2], [3, 0]] [[1, 2], [3]]"),
        ("{{ d | tojson }} {{ d | dictsort }}", '{"a": 1, "b": 2} [["a", 1], ["b", 2]]'),
        ("{{ d | tojson(indent=2) }}", '{\n  "a": 1,\n  "b": 2\n}'),
        ("{{ rows | groupby('k') | map(attribute='grouper') | join(',') }}", "x,y"),
        ("{{ rows | map(attribute='v') | sum }} {{ [[1], [2]] | sum(start=[]) }}", "6 [1, 2]"),
        ("{{ [3, 1, 2] | sort }} {{ [1, 1, 2] | unique | list }} {{ 'abc' | reverse }}", "[1, 2, 3] [1, 2] cba"),
        ("{{ rows | selectattr('v', 'gt', 1) | map(attribute='k') | join }}", "yx"),
        ("{{ '%-5s|' | format('ab') }}{{ '%(a)s' % {'a': 1} }}{{ '%5.1f' % 3.14159 }}", "ab   |1  3.1"),
        ("{{ '{:>5}|{:<3}|{:^5}'.format('a', 'b', 'c') }}", "    a|b  |  c  "),
        ("{{ '{0[0]}'.format(items) }}{{ '{a}'.format_map({'a': 1}) }}{{ '{:{w}}|'.format('x', w=3) }}", "a1x  |"),
        ("{{ 'a,b'.split(',') }} {{ ' x '.strip() }} {{ ', '.join(items) }} {{ 'x'.zfill(3) }}", '["a", "b"] x a, b 00x'),
        ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('a') }}", "b=2;a=1;1"),
        ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{{ m('a') }}", "<1><a>"),
        ("{% set s %}block {{ n }}{% endset %}{{ s | upper }}{% filter lower %} HI{% endfilter %}", "BLOCK 3 hi"),
        ("{% for x in items %}{{ loop.index }}:{{ x }}{{ loop.cycle(',', ';') }}{% endfor %}", "1:a,2:b;"),
        ("{% set c = cycler('x', 'y') %}{{ c.next() }}{{ c.next() }}{% set j = joiner('|') %}{% for x in items %}{{ j() }}{{ x }}{% endfor %}", "xya|b"),
        ("{% for x in [[1, [2]], [3]] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %}", "123"),
        ("{{ items ~ '!' }} {{ items | string }} {{ '%s' % ([1],) }} {{ '{}'.format(d) }}", '["a", "b"]! ["a", "b"] [1] {"b": 2, "a": 1}'),
        ("{{ '<b>x</b> &amp;' | striptags }} {{ '<a>' | e }} {{ text | wordcount }}", "x & &lt;a&gt; 4"),
        ("{{ items[::-1] }}{{ text[:5] }}{{ (1, 2) }}{{ dict(a=1) }}", '["b", "a"]hello[1, 2]{"a": 1}'),
        ("{% for i in range(100000) %}{{ i % 10 }}{% endfor %}", "0123456789" * 10000),
    ],
)
def test_ordinary_templates_render(template: str, expected: str) -> None:
    context = {"items": ["a", "b"], "text": "hello world foo bar", "d": {"b": 2, "a": 1}, "n": 3, "rows": [{"k": "x", "v": 1}, {"k": "y", "v": 2}, {"k": "x", "v": 3}]}
    assert render(template, context) == expected


def test_a_large_prompt_renders_up_to_the_bound() -> None:
    text = "x" * (MAX_TEXT - 10)
    assert render("{{ t }}{{ '0123456789' }}", {"t": text}) == text + "0123456789"
    with pytest.raises(TemplateError, match="larger than 1 MiB"):
        render("{{ t }}{{ '0123456789!' }}", {"t": text})


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
        ("{{ 'x'.encode() }}", "str.encode\\(\\) is not available"),
        ("{{ [1].append(1) }}", "list.append\\(\\) is not available"),
        ("{{ lipsum(5) }}", "'lipsum' is undefined"),
        ("{{ 'x' | urlize }}", "No filter named 'urlize'"),
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
