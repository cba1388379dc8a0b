"""Odd but legal documents a hostile tenant sends: each must be refused (or accepted)
cleanly, never answered with a 5xx or a traceback. Shared by the API and CLI probes.

Each entry: an id, the raw text, and the field path the refusal must name."""

from __future__ import annotations

BIG = "1" + "0" * 5000  # an integer of 5,001 digits: past Python's int/str limit

# Run request bodies (raw JSON: a client library would escape what we want to send as is).
# Sent to a workflow with inputs `who` (string), `times` (integer) and `extra` (object).
RUN_BODIES: list[tuple[str, str, str]] = [
    ("lone-surrogate-value", '{"inputs": {"who": "\\ud800"}}', "body.inputs.who"),
    ("lone-surrogate-key", '{"inputs": {"\\udfff": "x"}}', "body.inputs"),
    ("lone-surrogate-nested-key", '{"inputs": {"who": "x", "extra": {"\\ud800": 1}}}', "body.inputs.extra"),
    ("nul-in-key", '{"inputs": {"who": "x", "extra": {"a\\u0000b": 1}}}', "body.inputs.extra"),
    ("nul-in-top-level-key", '{"inputs": {"who": "x"}, "x\\u0000": 1}', "body"),
    ("nul-in-unknown-input-name", '{"inputs": {"who": "x", "n\\u0000": 1}}', "body.inputs"),
    ("number-over-float-range", '{"inputs": {"who": "x", "times": 1e400}}', "body.inputs.times"),
    ("negative-number-over-float-range", '{"inputs": {"who": "x", "extra": {"n": -1e400}}}', "body.inputs.extra"),
    ("infinity-literal", '{"inputs": {"who": "x", "extra": {"n": Infinity}}}', "body.inputs.extra"),
    ("nan-literal", '{"inputs": {"who": "x", "extra": {"n": NaN}}}', "body.inputs.extra"),
    ("integer-of-5000-digits", '{"inputs": {"who": "x", "times": ' + BIG + "}}", "body.inputs.times"),
    ("integer-over-float-range", '{"inputs": {"who": "x", "extra": {"n": 1' + "0" * 400 + "}}}", "body.inputs.extra"),
    ("surrogate-in-webhook-url", '{"inputs": {"who": "x"}, "webhook_url": "https://a\\ud800.example/"}', "body.webhook_url"),
    ("surrogate-in-mode", '{"inputs": {"who": "x"}, "mode": "\\ud800"}', "body.mode"),
    ("deep-nesting", '{"inputs": {"who": "x", "extra": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}}", "body"),
]

# Workflow documents (YAML; JSON is YAML too), each with the path its problem is at.
# None: the document is valid; what matters is that nothing breaks on the way.
WORKFLOWS: list[tuple[str, str, str | None]] = [
    ("version-of-5000-digits", f"name: x\nversion: {BIG}\nsteps:\n  - {{id: a, prompt: hi}}\n", "version"),
    ("default-of-5000-digits", f"name: x\ninputs:\n  n: {{type: integer, default: {BIG}}}\nsteps:\n  - {{id: a, prompt: hi}}\n", "inputs.n.default"),
    # A key longer than 1,024 characters needs YAML's explicit `? key` form.
    ("key-of-5000-digits", f"name: x\ninputs:\n  o:\n    type: object\n    default:\n      ? {BIG}\n      : 1\nsteps:\n  - {{id: a, prompt: hi}}\n", "inputs.o.default"),
    ("binary-not-utf8", "name: x\ndescription: !!binary /w==\nsteps:\n  - {id: a, prompt: hi}\n", "description"),
    ("binary-in-default", "name: x\ninputs:\n  s: {default: !!binary /w==}\nsteps:\n  - {id: a, prompt: hi}\n", "inputs.s.default"),
    ("nul-escape-in-key", 'name: x\ninputs:\n  o: {type: object, default: {"k\\0": 1}}\nsteps:\n  - {id: a, prompt: hi}\n', "inputs.o.default"),
    ("nul-escape-in-top-key", 'name: x\n"a\\0b": 1\nsteps:\n  - {id: a, prompt: hi}\n', ""),
    ("surrogate-escape-in-value", 'name: "x\\ud800"\nsteps:\n  - {id: a, prompt: hi}\n', "name"),
    ("surrogate-escape-in-key", 'name: x\ninputs:\n  o: {type: object, default: {"\\udc00": 1}}\nsteps:\n  - {id: a, prompt: hi}\n', "inputs.o.default"),
    ("float-over-range", "name: x\ninputs:\n  n: {type: number, default: 1.0e+400}\nsteps:\n  - {id: a, prompt: hi}\n", "inputs.n.default"),
    ("infinity", "name: x\ninputs:\n  n: {type: number, default: .inf}\nsteps:\n  - {id: a, prompt: hi}\n", "inputs.n.default"),
    ("nan-in-object", "name: x\ninputs:\n  o: {type: object, default: {v: .nan}}\nsteps:\n  - {id: a, prompt: hi}\n", "inputs.o.default.v"),
    ("bad-explicit-int", 'name: x\ninputs:\n  n: {type: integer, default: !!int "12ab"}\nsteps:\n  - {id: a, prompt: hi}\n', "inputs.n.default"),
    ("bad-explicit-float", 'name: x\ninputs:\n  n: {type: number, default: !!float "x"}\nsteps:\n  - {id: a, prompt: hi}\n', "inputs.n.default"),
    ("timestamp-default", "name: x\ninputs:\n  d: {default: 2026-12-01 10:00:00}\nsteps:\n  - {id: a, prompt: hi}\n", None),  # its text
    ("set-default", "name: x\ninputs:\n  d: {type: object, default: !!set {a, b}}\nsteps:\n  - {id: a, prompt: hi}\n", None),  # an object of nulls: fine
    ("json-number-over-range", '{"name": "x", "inputs": {"n": {"type": "number", "default": 1.5e+999}}, "steps": [{"id": "a", "prompt": "hi"}]}', "inputs.n.default"),
    ("json-string-number", '{"name": "x", "inputs": {"n": {"type": "number", "default": 1e999}}, "steps": [{"id": "a", "prompt": "hi"}]}', "inputs.n.default"),  # YAML 1.1 reads a string: not a number
]
