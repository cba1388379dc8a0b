"""JSON request bodies are parsed by one strict parser (orchestrate.jsondata), for
every route: a lone surrogate, a NUL, ``NaN``/``Infinity``, a number outside the float
range or an integer too long to convert becomes a 422 naming the field, before any
model, store or encoder can fail on it with a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from .. import jsondata


class BodyProblem(HTTPException):
    """A 422 with located ``errors``. An HTTPException, so FastAPI passes it through
    untouched while it reads the body (any other error there becomes a bare 400)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, "the request body is invalid")
        self.errors = errors


def parse(raw: bytes) -> Any:
    """The body as JSON data, or BodyProblem naming what is wrong and where."""
    try:
        return jsondata.loads(raw, "body")
    except json.JSONDecodeError as exc:
        error = {"path": "body", "message": f"invalid JSON: {exc.msg}", "line": exc.lineno, "column": exc.colno}
    except UnicodeDecodeError as exc:
        error = {"path": "body", "message": f"not valid UTF-8 (byte {exc.start})", "line": None, "column": None}
    except jsondata.DataError as exc:
        error = {"path": exc.path, "message": exc.message, "line": None, "column": None}
    raise BodyProblem([error])


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """``APIRouter(route_class=StrictJsonRoute)``: the route reads JSON with ``parse``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictRequest(request.scope, request.receive))

        return strict
