"""What the engine asks of a model provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..engine.records import Usage


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    temperature: float | None = None
    max_tokens: int | None = None
    output_schema: dict[str, Any] | None = None  # JSON Schema of a structured answer
    timeout: float = 120.0


@dataclass(frozen=True)
class Completion:
    text: str
    data: dict[str, Any] | None  # the parsed structured answer, when a schema was asked for
    model: str
    usage: Usage


class Provider(Protocol):
    async def complete(self, request: ChatRequest) -> Completion:
        """One model call. Raises ProviderError subclasses, classified as retryable or not."""
        ...
