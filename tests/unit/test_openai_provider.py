"""The OpenAI provider through the real `openai` SDK against a local server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrate.errors import ProviderAuthError, ProviderRejected, ProviderTransient, StepTimeout
from orchestrate.llm import ChatRequest, complete_with_retries
from orchestrate.llm.openai_provider import OpenAIProvider
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


def provider(fake: FakeOpenAI) -> OpenAIProvider:
    return OpenAIProvider("sk-test", fake.base_url)


REQUEST = ChatRequest(model="gpt-4o", messages=[{"role": "user", "content": "hello"}], temperature=0.2, max_tokens=50)


async def test_plain_completion_sends_the_request_and_records_usage(fake: FakeOpenAI) -> None:
    result = await provider(fake).complete(REQUEST)
    assert result.text == "echo: hello"
    assert result.usage.total_tokens == 18
    sent = fake.requests[0]
    assert sent["model"] == "gpt-4o" and sent["temperature"] == 0.2 and sent["max_tokens"] == 50
    assert fake.headers[0]["authorization"] == "Bearer sk-test"


async def test_structured_output_uses_a_json_schema_response_format(fake: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"audience": {"type": "string"}, "pains": {"type": "array", "items": {"type": "string"}}}, "required": ["audience", "pains"], "additionalProperties": False}
    result = await provider(fake).complete(ChatRequest(model="gpt-4o", messages=REQUEST.messages, output_schema=schema))
    assert result.data == {"audience": "audience value", "pains": ["one", "two"]}
    fmt = fake.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True and fmt["json_schema"]["schema"] == schema


async def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeOpenAI) -> None:
    fake.then(429, headers={"retry-after": "2"})
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    result = await complete_with_retries(provider(fake), REQUEST, timeout=10, sleep=sleep)
    assert result.text == "echo: hello"
    assert len(fake.requests) == 2
    assert waits == [2.0]  # waited as told, not the default backoff


async def test_500_is_retried_then_succeeds(fake: FakeOpenAI) -> None:
    fake.then(500).then(503)
    result = await complete_with_retries(provider(fake), REQUEST, timeout=10, base_delay=0.01)
    assert result.text == "echo: hello"
    assert len(fake.requests) == 3


async def test_401_fails_at_once_with_a_fix(fake: FakeOpenAI) -> None:
    fake.then(401, {"error": {"message": "Incorrect API key provided"}})
    with pytest.raises(ProviderAuthError, match="check OPENAI_API_KEY") as info:
        await complete_with_retries(provider(fake), REQUEST, timeout=10)
    assert "Incorrect API key" in info.value.message
    assert len(fake.requests) == 1


async def test_400_is_terminal(fake: FakeOpenAI) -> None:
    fake.then(400, {"error": {"message": "model not found"}})
    with pytest.raises(ProviderRejected, match="model not found"):
        await complete_with_retries(provider(fake), REQUEST, timeout=10)
    assert len(fake.requests) == 1


async def test_retry_after_beyond_the_timeout_gives_up_without_waiting(fake: FakeOpenAI) -> None:
    fake.then(429, headers={"retry-after": "30"})
    with pytest.raises(ProviderTransient, match="429"):
        await complete_with_retries(provider(fake), REQUEST, timeout=2)
    assert len(fake.requests) == 1


async def test_unreachable_server_is_transient_and_bounded_by_the_timeout() -> None:
    dead = OpenAIProvider("sk-test", "http://127.0.0.1:9/v1")
    with pytest.raises((ProviderTransient, StepTimeout)):
        await complete_with_retries(dead, REQUEST, timeout=1.5, base_delay=0.05)
