"""A deterministic model for tests and demos: the same request gets the same answer,
and structured answers conform to the step's output schema."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from ..engine.records import Usage
from .base import ChatRequest, Completion


class MockProvider:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        digest = hashlib.sha256(json.dumps([request.model, request.messages], sort_keys=True).encode()).hexdigest()
        prompt = request.messages[-1]["content"]
        topic = " ".join(prompt.split())[:80]
        data = None
        if request.output_schema is not None:
            properties = request.output_schema.get("properties", {})
            data = {name: mock_value(spec, name, digest) for name, spec in properties.items()}
            text = json.dumps(data, ensure_ascii=False)
        else:
            text = f"Mock answer {digest[:8]} to: {topic}"
        prompt_tokens = sum(len(m["content"]) for m in request.messages) // 4 + 1
        return Completion(text, data, f"mock-{request.model}", Usage(prompt_tokens, len(text) // 4 + 1))


def mock_value(spec: dict[str, Any], name: str, digest: str) -> Any:
    kind = spec.get("type", "string")
    seed = int(digest[:8], 16)
    if kind == "array":
        return [f"{name} {i + 1} ({digest[i * 4 : i * 4 + 4]})" for i in range(2 + seed % 2)]
    if kind == "integer":
        return seed % 100
    if kind == "number":
        return round((seed % 10000) / 100, 2)
    if kind == "boolean":
        return bool(seed % 2)
    return f"Mock {name.replace('_', ' ')} {digest[:6]}"
