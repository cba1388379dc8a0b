"""Hostile templates, by class: each builds a large value or burns CPU unless the
sandbox bounds it. Expressions are used as prompts (``{{ e }}``) and as ``when:``
conditions; statements (loops, macros, blocks) only as prompts."""

from __future__ import annotations

EXPRESSIONS: dict[str, str] = {
    # string methods that take a width or a count
    "str.center": "'x'.center(100000000)",
    "str.ljust": "'x'.ljust(100000000)",
    "str.rjust": "'x'.rjust(9999) * 100000",
    "str.zfill": "'1'.zfill(100000000)",
    "str.expandtabs width": "'\\t'.expandtabs(100000000)",
    "str.expandtabs size": "('\\t' * 100000).expandtabs(9999)",
    "str.replace": "('a' * 100000).replace('a', 'a' * 1000)",
    "str.replace empty": "('a' * 1000).replace('', 'b' * 100000)",
    "str.replace count": "('a' * 1000).replace('a', 'b' * 100000, 999)",
    "str.split": "('a ' * 500000).split()",
    "str.splitlines": "('\\n' * 1000000).splitlines()",
    "str times int": "'x' * 100000000",
    "int times str": "100000000 * 'x'",
    "str plus str": "('x' * 1000000) + ('x' * 1000000)",
    "concat": "('x' * 1000000) ~ ('x' * 1000000)",
    # % and format with * widths, many fields, big precisions
    "percent star width": "'%*s' % (100000000, 'x')",
    "percent star precision": "'%.*f' % (100000000, 1.0)",
    "percent many fields": "('%9999s' * 1000) % (('x',) * 1000)",
    "percent big list": "'%s' % ([[0] * 1000] * 100000)",
    "format nested width": "'{:{}}'.format('x', 100000000)",
    "format named width": "'{:>{w}}'.format('x', w=100000000)",
    "format many fields": "('{0:>9999}' * 10000).format(1)",
    "format precision": "'{0:.100000000f}'.format(1.0)",
    "format big list": "'{}'.format([[0] * 1000] * 100000)",
    "format_map": "'{a:>{w}}'.format_map({'a': 'x', 'w': 100000000})",
    # join with a large separator, or of many parts
    "join separator": "('x' * 100000).join(['a'] * 1000)",
    "join generator": "('x' * 1000).join(range(100000) | map('string'))",
    "join filter": "([[0] * 1000] * 100000) | join(',')",
    # list multiplication
    "list times int": "[0] * 100000000",
    "list of lists": "([0] * 1000) * 100000",
    "list plus list": "([0] * 1000000) + ([0] * 1000000)",
    # filters that pad, batch, slice, wrap, indent, center, truncate, format, serialise
    "filter center": "'x' | center(100000000)",
    "filter indent width": "'x' | indent(100000000)",
    "filter indent lines": "('x\\n' * 100000) | indent(1000)",
    "filter indent string": "('x\\n' * 100000) | indent('y' * 1000)",
    "filter batch fill": "[1] | batch(100000000, 0) | list",
    "filter batch many": "range(100000) | batch(1) | list",
    "filter slice": "[1] | slice(100000000) | list",
    "filter wordwrap narrow": "('x' * 100000) | wordwrap(1)",
    "filter wordwrap joint": "('x ' * 100000) | wordwrap(5, wrapstring='y' * 10000)",
    "filter truncate end": "('x' * 1000000) | truncate(1000000, end='y' * 1000000)",
    "filter format": "'%*s' | format(100000000, 'x')",
    "filter replace": "('a' * 100000) | replace('a', 'b' * 1000)",
    "filter tojson indent": "range(100000) | list | tojson(indent=10000)",
    "filter tojson big": "([[0] * 1000] * 100000) | tojson",
    "filter string big": "([[0] * 1000] * 100000) | string",
    "filter sum lists": "([[0] * 1000] * 100000) | sum(start=[])",
    "filter list of str": "('ab' * 500000) | list",
    "filter title": "('a ' * 500000) | title",
    "filter escape": "('\"' * 1000000) | escape",
    "filter map string": "range(100000) | map('string') | list",
    "filter sort": "(('a' * 1000000) | list | sort) | length",
    "filter unique": "(range(100000) | map('string') | unique | list) | length",
    "filter dictsort": "dict(('ab' * 1000000) | batch(2)) | dictsort",
    # lipsum, range, integers
    "lipsum": "lipsum(1000000)",
    "range large": "range(1000000000) | list",
    "int power": "(((9 ** 99) ** 99) ** 99) ** 99",
    "int product": "(2 ** 4000) * (2 ** 4000)",
    "int filter": "('9' * 100000) | int",
    "methods not allowed": "(1).to_bytes(100000000, 'big')",
    "translate": "('a' * 1000).translate({97: 'b' * 1000000})",
    # slices
    "slice copy": "(('x' * 1000000)[::1] ~ ('x' * 1000000)[::1])",
    # structures printed (stringified) whole
    "print list of lists": "[[0] * 1000] * 100000",
}

STATEMENTS: dict[str, str] = {
    "loop prints a big string": "{% set big = 'x' * 1000000 %}{% for i in range(1000) %}{{ big }}{% endfor %}",
    "loop prints a big list": "{% set l = range(20000) | list %}{% for i in range(300) %}{{ l }}{% endfor %}",
    "loop stringifies a big list": "{% set l = range(20000) | list %}{% for i in range(300) %}{{ l ~ '' }}{% endfor %}",
    "loop joins a big list": "{% set l = range(20000) | list %}{% for i in range(300) %}{{ l | join(',') }}{% endfor %}",
    "macro builds": "{% macro m() %}{% for i in range(1000) %}{{ 'x' * 100000 }}{% endfor %}{% endmacro %}{{ m() }}",
    "macro buffers references": "{% set big = 'x' * 1000000 %}{% macro m() %}{% for i in range(1000) %}{{ big }}{% endfor %}{% endmacro %}{{ m() }}",
    "set block": "{% set big = 'x' * 1000000 %}{% set out %}{% for i in range(1000) %}{{ big }}{% endfor %}{% endset %}{{ out }}",
    "filter block": "{% set big = 'x' * 100000 %}{% filter upper %}{% for i in range(1000) %}{{ big }}{% endfor %}{% endfilter %}",
    "linked list": "{% set ns = namespace(l=none) %}{% for i in range(100000) %}{% set ns.l = [ns.l, i] %}{% endfor %}{{ ns.l | length }}",
    "growing string": "{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ns.s ~ 'xxxxxxxxxx' %}{% endfor %}{{ ns.s | length }}",
    "namespace printed": "{% set ns = namespace(a='x' * 1000000) %}{% for i in range(100) %}{{ ns }}{% endfor %}",
    "nested loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "recursive loop": "{% for x in [[1]] recursive %}{{ loop([[1]]) }}{% endfor %}",
    "recursive macro": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "cpu in a loop": "{% set big = 'ab' * 500000 %}{% for i in range(100000) %}{% if big.count('c') %}{% endif %}{% endfor %}",
    "cpu in a filter chain": "{% set big = 'ab' * 500000 %}{{ range(100000) | map('replace', 'c', 'd') | list | length }}{% for i in range(100000) %}{{ big.find('c') }}{% endfor %}",
}
