"""How an http step's request is rendered and what it records: secrets only ever as
placeholders, in the request shown and in any text that echoes them."""

from __future__ import annotations

import json

from orchestrate.engine.kinds.http import render_request, scrub
from orchestrate.spec.model import HttpCall
from orchestrate.templates import namespace

SECRET = 'pa"ss\\wörd'  # a quote, a backslash and a non-ASCII letter: JSON escapes each


def test_the_request_is_sent_with_the_secret_and_recorded_without_it() -> None:
    call = HttpCall(method="POST", url="https://api.example.com/v1?k={{ secrets.KEY | urlencode }}", headers={"X-Key": "k={{ secrets.KEY | upper }}"}, body={"n": "{{ inputs.n }}", "t": "n={{ inputs.n }}"})
    request = render_request(call, {"inputs": namespace({"n": 3})}, {"KEY": "abc"})
    assert request.url == "https://api.example.com/v1?k=abc" and request.headers["X-Key"] == "k=ABC"
    assert json.loads(request.content or b"") == {"n": 3, "t": "n=3"}
    assert request.shown.splitlines()[:2] == ["POST https://api.example.com/v1?k=%5Bsecret%20KEY%5D", "X-Key: k=[SECRET KEY]"]
    # What was rendered from the secret (upper-cased here) is scrubbed too, not only the value.
    assert scrub("server saw k=ABC and abc", request.redactions) == "server saw k=[SECRET KEY] and [secret KEY]"


def test_a_secret_echoed_inside_json_is_scrubbed_in_every_escaping() -> None:
    hidden = render_request(HttpCall(url="https://api.example.com", headers={"A": "{{ secrets.KEY | urlencode }}"}), {}, {"KEY": SECRET})
    for echoed in (json.dumps({"v": SECRET}), json.dumps({"v": SECRET}, ensure_ascii=False), SECRET):
        assert "ss" not in scrub(echoed, hidden.redactions).replace("[secret KEY]", ""), echoed
