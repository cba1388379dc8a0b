"""Transient provider errors are retried with backoff, inside the step's timeout."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable

from ..errors import ProviderError, StepTimeout
from .base import ChatRequest, Completion, Provider

Sleep = Callable[[float], Awaitable[None]]


async def complete_with_retries(
    provider: Provider,
    request: ChatRequest,
    *,
    timeout: float,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
    sleep: Sleep = asyncio.sleep,
) -> Completion:
    """Call the provider until it answers, a terminal error, or ``timeout`` seconds.
    A 429's Retry-After is honoured when it fits in the time left."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StepTimeout(f"no answer from the model within the step's timeout of {timeout:g}s")
        try:
            async with asyncio.timeout(remaining):
                return await provider.complete(dataclasses.replace(request, timeout=remaining))
        except TimeoutError:
            raise StepTimeout(f"no answer from the model within the step's timeout of {timeout:g}s") from None
        except ProviderError as exc:
            if not exc.retryable:
                raise
            delay = exc.retry_after if exc.retry_after is not None else min(max_delay, base_delay * 2**attempt) * random.uniform(0.5, 1.0)
            if time.monotonic() + delay >= deadline:
                raise
            await sleep(delay)
            attempt += 1
