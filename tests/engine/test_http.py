"""http steps against a real HTTP server on loopback, on both stores: what was sent,
what the step recorded, and how each kind of answer ends the step."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from orchestrate.engine.kinds.http import HttpPolicy
from orchestrate.engine.local import run_local
from orchestrate.engine.memory import MemoryStore
from orchestrate.engine.records import RunState
from orchestrate.errors import RunRefused
from orchestrate.spec import parse_workflow, resolve_inputs
from orchestrate.vault import StaticSecrets
from tests.engine.conftest import Env
from tests.fakes.api_server import ApiServer, Reply, json_reply
from tests.fakes.providers import RecordingProvider

TOKEN = "tok-9f2c61d0b7e4a3"  # a secret value: it must reach the server and nothing else
LOOPBACK = HttpPolicy(allow_private=True)
FAST = "retry: {max_attempts: 3, initial_delay: 0, max_delay: 0}"


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    yield server
    server.stop()


async def run(env: Env, text: str, api: ApiServer, *, policy: HttpPolicy = LOOPBACK, provider: RecordingProvider | None = None, **inputs: object) -> RunState:
    plan = parse_workflow(text)
    values = resolve_inputs(plan.workflow, {"base": api.url, **inputs})
    return await run_local(
        plan, values, provider or RecordingProvider(), store=env.store, owner_id=env.owner, secrets=StaticSecrets({"TOKEN": TOKEN}), http=policy
    )


def workflow(http: str, *extra: str, inputs: str = "") -> str:
    steps = "\n".join(f"  - {line}" for line in (f"{{id: call, {http}}}", *extra))
    return f"name: api\ninputs: {{base: {{type: string}}{inputs}}}\nsteps:\n{steps}\n"


async def test_a_json_answer_is_the_output_and_its_declared_fields_flow_on(env: Env, api: ApiServer) -> None:
    api.then(json_reply({"name": "Ada", "count": 3, "extra": [1]}))
    provider = RecordingProvider()
    text = workflow(
        "http: {method: POST, url: '{{ inputs.base }}/items?q={{ inputs.q | urlencode }}', "
        "headers: {Authorization: 'Bearer {{ secrets.TOKEN }}'}, body: {who: '{{ inputs.q }}', n: '{{ inputs.n }}'}}, "
        "outputs: [{name: name}, {name: count, type: integer}]",
        "{id: greet, prompt: 'Hello {{ steps.call.outputs.name }} x{{ steps.call.outputs.count }}'}",
        inputs=", q: {default: 'a b'}, n: {type: integer, default: 2}",
    )
    result = await run(env, text, api, provider=provider)
    assert result.status.value == "succeeded", result.error
    seen = api.requests[0]
    assert (seen.method, seen.path) == ("POST", "/items?q=a%20b")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(seen.body) == {"who": "a b", "n": 2}  # a lone {{ expression }} keeps its type
    assert seen.headers["content-type"] == "application/json"
    call = result.steps["call"]
    assert call.outputs == {"name": "Ada", "count": 3}
    assert json.loads(call.output or "") == {"name": "Ada", "count": 3, "extra": [1]}
    assert call.prompt is not None and call.prompt.startswith(f"POST {api.url}/items?q=a%20b\nAuthorization: Bearer [secret TOKEN]\n")
    assert (call.model or "", call.usage.total_tokens, call.attempt) == ("", 0, 1) and call.latency_ms is not None
    assert provider.requests[0].messages[-1]["content"] == "Hello Ada x3"  # the step depended on the call
    assert TOKEN not in json.dumps(result.to_dict())
    assert TOKEN not in json.dumps([e.to_dict() for e in await env.store.events(result.id)])


async def test_a_text_answer_is_the_output(env: Env, api: ApiServer) -> None:
    api.then(Reply(200, "plain words".encode(), {"content-type": "text/plain; charset=utf-8"}))
    result = await run(env, workflow("http: {url: '{{ inputs.base }}/t', body: 'hi {{ inputs.base }}', method: PUT}"), api)
    assert result.status.value == "succeeded"
    assert (result.steps["call"].output, result.steps["call"].outputs) == ("plain words", None)
    assert api.requests[0].body.decode() == f"hi {api.url}" and api.requests[0].headers["content-type"].startswith("text/plain")
    assert result.outputs == {"call": "plain words"}


async def test_a_429_is_retried_after_its_retry_after_then_succeeds(env: Env, api: ApiServer) -> None:
    api.then(json_reply({"error": "slow down"}, 429, **{"retry-after": "0"}))
    result = await run(env, workflow(f"http: {{url: '{{{{ inputs.base }}}}/x'}}, {FAST}"), api)
    assert result.status.value == "succeeded" and result.steps["call"].attempt == 2
    retrying = [e for e in await env.store.events(result.id) if e.type == "step.retrying"]
    assert len(retrying) == 1 and "answered 429" in retrying[0].data["error"]["message"]
    assert len(api.requests) == 2


async def test_a_500_is_retried_until_the_step_gives_up(env: Env, api: ApiServer) -> None:
    api.default = Reply(500, b"database on fire")
    result = await run(env, workflow(f"http: {{url: '{{{{ inputs.base }}}}/x'}}, {FAST}"), api)
    assert result.status.value == "failed"
    error = result.steps["call"].error
    assert error is not None and error.type == "http-error"
    assert error.message == f"GET {api.url}/x answered 500: database on fire (gave up after 3 attempts)"
    assert len(api.requests) == 3


async def test_a_404_fails_at_once_with_the_status_and_an_excerpt(env: Env, api: ApiServer) -> None:
    api.then(json_reply({"detail": "no such item " + "x" * 500}, 404))
    result = await run(env, workflow(f"http: {{url: '{{{{ inputs.base }}}}/items/7'}}, {FAST}"), api)
    error = result.steps["call"].error
    assert result.status.value == "failed" and error is not None and len(api.requests) == 1
    assert error.message.startswith(f"GET {api.url}/items/7 answered 404: {{\"detail\": \"no such item xxx")
    assert len(error.message) < 300 and error.message.endswith("…")


async def test_a_redirect_is_not_followed(env: Env, api: ApiServer) -> None:
    api.then(Reply(302, b"", {"location": "http://169.254.169.254/latest/meta-data"}))
    result = await run(env, workflow(f"http: {{url: '{{{{ inputs.base }}}}/r'}}, {FAST}"), api)
    error = result.steps["call"].error
    assert result.status.value == "failed" and error is not None and error.type == "http-redirect"
    assert "a redirect to http://169.254.169.254/latest/meta-data; redirects are not followed" in error.message
    assert len(api.requests) == 1


async def test_an_answer_over_the_cap_fails_the_step_and_is_not_kept(env: Env, api: ApiServer) -> None:
    api.then(Reply(200, b"x" * 5000, {"content-type": "text/plain"}))
    result = await run(env, workflow("http: {url: '{{ inputs.base }}/big'}"), api, policy=HttpPolicy(allow_private=True, max_response=4096))
    call = result.steps["call"]
    assert result.status.value == "failed" and call.output is None
    assert call.error is not None and call.error.type == "http-response-too-large" and "larger than 4 KiB" in call.error.message


async def test_an_answer_that_does_not_match_the_declared_outputs_names_the_field(env: Env, api: ApiServer) -> None:
    api.then(json_reply({"name": 7}))
    result = await run(env, workflow("http: {url: '{{ inputs.base }}/x'}, outputs: [{name: name}]"), api)
    error = result.steps["call"].error
    assert error is not None and error.type == "output-mismatch"
    assert error.message == f"GET {api.url}/x: field 'name' of the answer is a number, not string (declared in `outputs`)"


async def test_private_addresses_are_refused_unless_the_setting_allows_them(env: Env, api: ApiServer) -> None:
    refused = HttpPolicy(allow_private=False)
    # Written in the file: refused before the run is created.
    with pytest.raises(RunRefused) as caught:
        await run(env, workflow(f"http: {{url: '{api.url}/x'}}"), api, policy=refused)
    assert caught.value.type == "unsafe-url"
    assert caught.value.problems[0].path == "steps[0].http.url" and "a loopback address" in caught.value.problems[0].message
    # Rendered from an input: refused when the step runs, without a request.
    result = await run(env, workflow("http: {url: '{{ inputs.base }}/x'}"), api, policy=refused)
    error = result.steps["call"].error
    assert result.status.value == "failed" and error is not None and error.type == "unsafe-url"
    assert error.message == "HTTP host 127.0.0.1 is not public: a loopback address"
    assert api.requests == []


async def test_a_missing_secret_refuses_the_run_before_it_is_created(api: ApiServer) -> None:
    store = MemoryStore()
    plan = parse_workflow(workflow("http: {url: '{{ inputs.base }}', headers: {X-Key: '{{ secrets.NOPE }}'}}"))
    with pytest.raises(RunRefused) as caught:
        await run_local(plan, {"base": api.url}, RecordingProvider(), store=store, secrets=StaticSecrets({}), http=LOOPBACK)
    assert caught.value.type == "secret-not-found" and caught.value.problems[0].path == "steps[0].http"
    assert "secret NOPE not found" in caught.value.problems[0].message
    assert store._runs == {} and api.requests == []


async def test_for_each_calls_once_per_item(env: Env, api: ApiServer) -> None:
    text = workflow(
        "http: {url: '{{ inputs.base }}/n/{{ item }}?i={{ loop.index }}'}, for_each: '{{ inputs.ids }}'", inputs=", ids: {type: array, default: [a, b, c]}"
    )
    result = await run(env, text, api)
    assert result.status.value == "succeeded"
    assert sorted(r.path for r in api.requests) == ["/n/a?i=1", "/n/b?i=2", "/n/c?i=3"]
    assert result.steps["call"].outputs == ['{"ok": true}'] * 3  # each item's answer, in order


async def test_a_secret_echoed_by_the_server_is_redacted_from_the_answer_and_errors(env: Env, api: ApiServer) -> None:
    api.then(json_reply({"you_sent": f"Bearer {TOKEN}", "key": TOKEN}))
    api.then(Reply(401, f"bad token {TOKEN}".encode()))
    text = workflow(
        "http: {url: '{{ inputs.base }}/me?key={{ secrets.TOKEN }}', headers: {Authorization: 'Bearer {{ secrets.TOKEN }}'}}, outputs: [{name: key}]",
        "{id: again, needs: [call], http: {url: '{{ inputs.base }}/me', headers: {Authorization: 'Bearer {{ secrets.TOKEN }}'}}}",
    )
    result = await run(env, text, api)
    assert [r.headers["authorization"] for r in api.requests] == [f"Bearer {TOKEN}"] * 2
    assert result.steps["call"].outputs == {"key": "[secret TOKEN]"}
    assert result.steps["again"].error is not None and result.steps["again"].error.message.endswith("answered 401: bad token [secret TOKEN]")
    assert TOKEN not in json.dumps(result.to_dict())
    assert TOKEN not in json.dumps([e.to_dict() for e in await env.store.events(result.id)])


async def test_a_nul_in_a_json_answer_is_stored_visibly(env: Env, api: ApiServer) -> None:
    api.then(Reply(200, b'{"name": "a\\u0000b"}', {"content-type": "application/json"}))  # Postgres stores no U+0000
    result = await run(env, workflow("http: {url: '{{ inputs.base }}/x'}, outputs: [{name: name}]"), api)
    assert result.status.value == "succeeded", result.error
    assert result.steps["call"].outputs == {"name": "a\ufffdb"}
