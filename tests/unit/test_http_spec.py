"""http steps and secrets in the language: dependencies, and what validation catches,
located in the file."""

from __future__ import annotations

import pytest

from orchestrate.errors import SpecError
from orchestrate.spec import json_schema, parse_workflow

HEAD = "name: x\ninputs: {base: {default: 'https://api.example.com'}}\nsteps:\n  - {id: r, prompt: hi, outputs: [{name: id}]}\n"


def problems(step: str) -> list[tuple[str, str, int | None]]:
    with pytest.raises(SpecError) as caught:
        parse_workflow(HEAD + f"  - {step}\n")
    return [(p.path, p.message, p.line) for p in caught.value.problems]


def test_references_in_url_headers_and_body_are_dependencies_and_secrets_are_listed() -> None:
    plan = parse_workflow(
        HEAD
        + "  - {id: a, prompt: hi}\n"
        + "  - {id: b, prompt: hi}\n"
        + "  - id: call\n"
        + "    http:\n"
        + "      method: POST\n"
        + "      url: '{{ inputs.base }}/items/{{ steps.r.outputs.id }}?k={{ secrets.API_KEY }}'\n"
        + "      headers: {Authorization: 'Bearer {{ secrets.TOKEN }}', X-From: '{{ a }}'}\n"
        + "      body: {note: '{{ steps.b.output }}', tags: ['{{ inputs.base }}']}\n"
    )
    assert plan.steps["call"].needs == {"r", "a", "b"}
    assert plan.steps["call"].secrets == {"API_KEY", "TOKEN"}
    assert plan.secrets == {"API_KEY": ["call"], "TOKEN": ["call"]}
    assert plan.steps["call"].step.kind == "http"


@pytest.mark.parametrize(
    ("step", "path", "message"),
    [
        ("{id: d, prompt: '{{ secrets.TOKEN }}'}", "steps[1].prompt", "`secrets` can only be used in an http step's `url` and `headers`"),
        ("{id: d, http: {url: 'https://a.example', body: '{{ secrets.TOKEN }}'}}", "steps[1].http.body", "`secrets` can only be used"),
        ("{id: d, http: {url: 'https://a.example', body: {a: ['{{ secrets.T }}']}}}", "steps[1].http.body.a[0]", "`secrets` can only be used"),
        ("{id: d, when: 'secrets.TOKEN', http: {url: 'https://a.example'}}", "steps[1].when", "`secrets` can only be used"),
        ("{id: d, http: {url: 'https://a.example/{{ secrets.lower }}'}}", "steps[1].http.url", "secret name 'lower' is not valid"),
        ("{id: d, http: {url: 'https://a.example/{{ secrets }}'}}", "steps[1].http.url", "'secrets' must be followed by a literal name"),
        ("{id: d, model: gpt-4o, http: {url: 'https://a.example'}}", "steps[1].model", "`model` applies only to a `prompt` step, not to an `http` step"),
        ("{id: d, system: be brief, http: {url: 'https://a.example'}}", "steps[1].system", "`system` applies only to a `prompt` step"),
        ("{id: d, temperature: 0.2, http: {url: 'https://a.example'}}", "steps[1].temperature", "`temperature` applies only to a `prompt` step"),
        ("{id: d, max_tokens: 9, http: {url: 'https://a.example'}}", "steps[1].max_tokens", "`max_tokens` applies only to a `prompt` step"),
        ("{id: d, http: {url: 'https://a.example/{{ item }}'}}", "steps[1].http.url", "`item` is only defined in a step with `for_each`"),
        ("{id: d, http: {url: 'ftp://a.example/x'}}", "steps[1].http.url", "HTTP URL must start with http:// or https://"),
        ("{id: d, http: {url: 'https://u:p@a.example/x'}}", "steps[1].http.url", "HTTP URL must not carry credentials"),
        ("{id: d, http: {url: '{{ steps.nope.output }}'}}", "steps[1].http.url", "unknown step 'nope'"),
        ("{id: d, timeout: 10, http: {url: 'https://a.example', timeout: 20}}", "steps[1].http.timeout", "must not exceed the step's `timeout` (10s)"),
        ("{id: d, http: {url: 'https://a.example', headers: {Host: evil}}}", "steps[1].http.headers", "header 'Host' is set by the connection itself"),
        ("{id: d, http: {url: 'https://a.example', headers: {'bad name': x}}}", "steps[1].http.headers.bad name.[key]", "a header name is letters, digits"),
        ("{id: d, http: {url: 'https://a.example', method: TRACE}}", "steps[1].http.method", "input should be"),
    ],
)
def test_bad_http_steps_are_located(step: str, path: str, message: str) -> None:
    found = problems(step)
    assert any(p == path and message.lower() in m.lower() and line == 5 for p, m, line in found), found


def test_item_and_loop_are_usable_in_an_http_step_with_for_each() -> None:
    plan = parse_workflow(HEAD + "  - {id: d, for_each: '{{ [1, 2] }}', http: {url: 'https://a.example/{{ item }}', headers: {X-N: '{{ loop.index }}'}, body: {i: '{{ item }}'}}}\n")
    assert plan.steps["d"].step.for_each is not None
    found = problems("{id: d, for_each: '{{ [1] }}', when: 'item', http: {url: 'https://a.example'}}")
    assert ("steps[1].when", "`item` is only defined in an http step's url, headers and body with `for_each`", 5) in found


def test_the_json_schema_describes_http_steps() -> None:
    schema = json_schema()
    http = schema["$defs"]["HttpCall"]
    assert set(http["properties"]) == {"method", "url", "headers", "body", "timeout"}
    assert http["required"] == ["url"]
    assert {"required": ["http"]} in schema["$defs"]["Step"]["oneOf"]
