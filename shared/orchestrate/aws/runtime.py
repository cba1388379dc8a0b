"""What a Lambda container keeps between invocations: settings (environment plus SSM
parameters), one event loop, and the engine with its connection pool."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from ..engine.core import Engine
from ..settings import Settings

T = TypeVar("T")


def load_ssm_parameters(prefix: str, client: Any) -> dict[str, str]:
    """Every parameter directly under ``prefix`` (SecureStrings decrypted), by last path segment."""
    values: dict[str, str] = {}
    paginator = client.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=prefix, WithDecryption=True, Recursive=False):
        for parameter in page["Parameters"]:
            values[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
    return values


def read_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment, completed by SSM parameters under ORCHESTRATE_SSM_PREFIX
    (the environment wins, so a function can override one value)."""
    env = dict(os.environ if env is None else env)
    prefix = env.get("ORCHESTRATE_SSM_PREFIX")
    if prefix:
        import boto3

        client = boto3.client("ssm", region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
        env = {**load_ssm_parameters(prefix, client), **env}
    return env


class Runtime:
    """One per container. ``engine()`` is built on first use, on this runtime's loop,
    which every invocation reuses (a pool bound to a closed loop would be useless)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._settings = settings
        self._engine: Engine | None = None
        self._building = asyncio.Lock()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env(read_environment())
        return self._settings

    def run(self, coro: Awaitable[T]) -> T:
        asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(coro)

    async def engine(self) -> Engine:
        # A cold batch asks for the engine from every record at once: build one, not ten.
        if self._engine is None:
            async with self._building:
                if self._engine is None:
                    self._engine = await build_engine(self.settings)
        return self._engine

    def close(self) -> None:
        """Close the engine's connections and the loop (tests, the local worker)."""
        close = getattr(self._engine.store, "close", None) if self._engine else None
        if close is not None:
            self.run(close())
        self.loop.close()

    def use(self, engine: Engine) -> None:
        """Put a prepared engine in place (tests, the local worker)."""
        self._engine = engine


async def build_engine(settings: Settings) -> Engine:
    """The hosted engine: Postgres store, SQS queue, the configured model."""
    from ..db.store import PostgresStore
    from ..db.workflows import Workflows
    from ..errors import ConfigError
    from ..llm import make_provider
    from .sqs import SqsQueue, sqs_client

    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set (environment or SSM parameter)")
    if not settings.step_queue_url:
        raise ConfigError("ORCHESTRATE_STEP_QUEUE_URL is not set")
    store = await PostgresStore.open(settings.database_url, max_size=10)
    client = sqs_client(settings.aws_region, settings.sqs_endpoint_url)
    queue = SqsQueue(settings.step_queue_url, client)
    webhooks = SqsQueue(settings.webhook_queue_url, client) if settings.webhook_queue_url else None
    return Engine(
        store,
        queue,
        make_provider(settings),
        default_model=settings.default_model,
        webhooks=webhooks,
        max_in_flight=settings.run_max_in_flight,
        library=Workflows(store),
        max_workflow_depth=settings.max_workflow_depth,
        api_url=settings.api_url,
    )
