"""OpenAI, or any OpenAI-compatible server, through the official SDK.

The SDK's own retries are off: we classify each failure once (retryable or not)
and retry inside the step's timeout, honouring Retry-After."""

from __future__ import annotations

import email.utils
import json
import time
from typing import TYPE_CHECKING, Any

from ..engine.records import Usage
from ..errors import ProviderAuthError, ProviderError, ProviderRejected, ProviderTransient
from .base import ChatRequest, Completion

if TYPE_CHECKING:
    import openai


class OpenAIProvider:
    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._client: openai.AsyncOpenAI | None = None

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            import openai  # heavy: loaded on first use, not at import

            self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self._base_url, max_retries=0)
        return self._client

    async def complete(self, request: ChatRequest) -> Completion:
        import openai

        kwargs: dict[str, Any] = {"model": request.model, "messages": request.messages, "timeout": request.timeout}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.output_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "step_output", "strict": True, "schema": request.output_schema},
            }
        try:
            response = await self.client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            raise _classify(exc) from None
        except openai.APITimeoutError:
            raise ProviderTransient("the model server timed out") from None
        except openai.APIConnectionError as exc:
            raise ProviderTransient(f"cannot reach the model server at {self.client.base_url}: {exc}") from None
        if not response.choices:
            raise ProviderTransient("the model returned no choices")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise ProviderRejected(f"the model refused: {message.refusal}")
        text = message.content or ""
        data = None
        if request.output_schema is not None:
            data = _parse_structured(text, request.output_schema)
        usage = response.usage
        return Completion(
            text,
            data,
            response.model or request.model,
            Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        )


def _parse_structured(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ProviderTransient("the model's structured answer is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProviderTransient("the model's structured answer is not a JSON object")
    missing = [name for name in schema.get("required", []) if name not in data]
    if missing:
        raise ProviderTransient(f"the model's structured answer lacks {', '.join(missing)}")
    return data


def _classify(exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    detail = _detail(exc)
    if status in (401, 403):
        return ProviderAuthError(
            f"the model server rejected the credentials ({status}{': ' + detail if detail else ''}); "
            "check OPENAI_API_KEY (and OPENAI_BASE_URL if you use another server)"
        )
    if status == 429 or status == 408 or status == 409 or status >= 500:
        return ProviderTransient(f"the model server answered {status}{': ' + detail if detail else ''}", retry_after=_retry_after(exc))
    return ProviderRejected(f"the model server rejected the request ({status}{': ' + detail if detail else ''})")


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str):
            return message[:300]
    return ""


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
