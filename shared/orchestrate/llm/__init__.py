"""Model providers: OpenAI (or any OpenAI-compatible server) and a deterministic mock."""

from __future__ import annotations

from ..errors import ConfigError
from ..settings import Settings
from .base import ChatRequest, Completion, Provider
from .mock import MockProvider
from .retry import complete_with_retries

__all__ = ["ChatRequest", "Completion", "MockProvider", "Provider", "complete_with_retries", "make_provider"]


def make_provider(settings: Settings, *, mock: bool = False) -> Provider:
    """The mock when asked for (``--mock`` or ORCHESTRATE_USE_MOCK=1), else OpenAI."""
    if mock or settings.use_mock:
        return MockProvider(settings.mock_delay)
    if not settings.openai_api_key:
        raise ConfigError(
            "no model provider configured: set OPENAI_API_KEY (in the environment or .env), "
            "or use the mock with --mock or ORCHESTRATE_USE_MOCK=1"
        )
    from .openai_provider import OpenAIProvider

    return OpenAIProvider(settings.openai_api_key, settings.openai_base_url)
