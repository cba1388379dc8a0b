"""Providers for engine tests: the mock, wrapped to record calls and inject failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from orchestrate.llm import ChatRequest, Completion, MockProvider


class RecordingProvider:
    """The mock model, recording each request and the peak number of calls in flight.
    ``fail`` may raise for a request (by prompt) to inject provider errors."""

    def __init__(self, delay: float = 0.0, fail: Callable[[ChatRequest, int], None] | None = None) -> None:
        self.mock = MockProvider(delay)
        self.fail = fail
        self.requests: list[ChatRequest] = []
        self.in_flight = 0
        self.peak = 0

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.fail is not None:
                self.fail(request, sum(1 for r in self.requests if r.messages[-1] == request.messages[-1]))
            return await self.mock.complete(request)
        finally:
            self.in_flight -= 1

    def prompts(self) -> list[str]:
        return [r.messages[-1]["content"] for r in self.requests]
