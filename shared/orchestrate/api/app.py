"""The FastAPI application: ``create_app(settings, services=...)``.

Services are injected (``orchestrate serve``, tests) or opened on first use with
``open_services`` (Lambda: no lifespan, the pool lives across warm invocations on the
one event loop Mangum reuses)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ..settings import Settings
from . import problems
from .auth import Authenticator
from .middleware import MAX_BODY, BodyLimit, CatchAll
from .problems import PROBLEM_JSON
from .services import Services, open_services

Opener = Callable[[], AbstractAsyncContextManager[Services]]


class ServiceHolder:
    """The app's services: given, or opened once on first use and closed at shutdown."""

    def __init__(self, services: Services | None, opener: Opener) -> None:
        self._services = services
        self._opener = opener
        self._stack: AsyncExitStack | None = None
        self._lock: asyncio.Lock | None = None

    async def get(self) -> Services:
        if self._services is not None:
            return self._services
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._services is None:
                stack = AsyncExitStack()
                self._services = await stack.enter_async_context(self._opener())
                self._stack = stack
        return self._services

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._services = self._stack, None, None
            await stack.aclose()


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    opener: Opener | None = None,
    max_body: int = MAX_BODY,
    studio_dir: Path | None = None,
) -> FastAPI:
    """The HTTP API, and the Studio at ``/`` (from ``studio_dir``, by default the build
    shipped in the package). Raises ConfigError when no way to verify tokens is configured."""
    from . import studio
    from .routers import account, callbacks, catalog, config, deliveries, events, runs, signin, workflows

    holder = ServiceHolder(services, opener or (lambda: open_services(settings)))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await holder.close()

    app = FastAPI(
        title="Orchestrate",
        version="1",
        summary="Run multi-step LLM workflows written in YAML.",
        description="Authenticate with `Authorization: Bearer <Supabase access token>`. Errors are `application/problem+json` (RFC 9457).",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings)
    problems.install(app)
    for module in (workflows, catalog, runs, events, deliveries, account, signin, config, callbacks):
        app.include_router(module.router)
    studio.mount(app, studio_dir or studio.STUDIO_DIR)  # after the API: its paths match first
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(CatchAll)  # added last: outermost of ours
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with error responses documented as problem+json only."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from .routers._docs import openapi_components
        from .schemas import WorkflowSource

        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes)
        # Schemas referenced by hand: the body of routes that read it themselves (JSON or
        # YAML), and the problem of every error response.
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["WorkflowSource"] = WorkflowSource.model_json_schema()
        components.update(openapi_components())
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and PROBLEM_JSON in content:
                        content.pop("application/json", None)
        app.openapi_schema = schema
    return app.openapi_schema
