"""RFC 9457 problem details for every error the API answers, with stable ``type`` slugs.

Our own errors carry their slug (``OrchestrateError.type``); framework errors (routing,
request validation) get one here; anything unexpected becomes a generic 500 that names
no internals. No traceback ever reaches a client."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AnswerError, ConflictError, InputError, NotFound, OrchestrateError, SpecError

log = logging.getLogger("orchestrate.api")

PROBLEM_JSON = "application/problem+json"

# Slugs for errors raised by the framework itself, by status.
_STATUS_SLUGS = {
    400: "bad-request",
    401: "invalid-token",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    500: "internal-error",
    503: "unavailable",
}


class ApiProblem(Exception):
    """Raise to answer with a problem: ``ApiProblem(404, "not-found", "run x not found")``."""

    def __init__(
        self,
        status: int,
        type: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None


def problem_response(
    request: Request | None,
    status: int,
    type: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type, "title": _title(status), "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    if errors is not None:
        body["errors"] = list(errors)
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


class ProblemResponse(JSONResponse):
    """Escapes non-ASCII: a problem may quote what the caller sent, and that must
    never make the error itself unencodable (a lone surrogate in a path, say)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def spec_errors(exc: SpecError) -> list[dict[str, Any]]:
    return [{"path": p.path, "message": p.message, "line": p.line, "column": p.column} for p in exc.problems]


def input_errors(exc: InputError) -> list[dict[str, Any]]:
    return _named(exc.problems, "input", "inputs")


def answer_errors(exc: AnswerError) -> list[dict[str, Any]]:
    return _named(exc.problems, "field", "body.fields")


def _named(problems: list[str], what: str, base: str) -> list[dict[str, Any]]:
    """Errors located at ``base.<name>`` when the message names one (``what 'name': ...``)."""
    out = []
    for message in problems:
        name = re.match(rf"{what} '([^']+)'", message)
        out.append({"path": f"{base}.{name.group(1)}" if name else base, "message": message, "line": None, "column": None})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem response."""
    app.add_exception_handler(ApiProblem, _api_problem)  # type: ignore[arg-type]
    app.add_exception_handler(OrchestrateError, _orchestrate_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.errors.ForeignKeyViolation, _missing_reference)  # type: ignore[arg-type]


async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
    return problem_response(request, exc.status, exc.type, exc.detail, headers=exc.headers, errors=exc.errors)


async def _orchestrate_error(request: Request, exc: OrchestrateError) -> JSONResponse:
    if isinstance(exc, SpecError):
        n = len(exc.problems)
        return problem_response(request, 422, exc.type, f"the workflow is invalid ({n} problem{'s' if n != 1 else ''})", errors=spec_errors(exc))
    if isinstance(exc, InputError):
        return problem_response(request, 422, exc.type, "the run's inputs are invalid", errors=input_errors(exc))
    if isinstance(exc, AnswerError):
        return problem_response(request, 422, exc.type, "the answer does not match the approval's fields", errors=answer_errors(exc))
    if isinstance(exc, NotFound):
        return problem_response(request, 404, exc.type, exc.message)
    if isinstance(exc, ConflictError):
        return problem_response(request, 409, exc.type, exc.message)
    if exc.type.startswith("database-") or exc.type == "embedded-postgres-failed":
        log.error("database unavailable: %s", exc.message)
        return problem_response(request, 503, "database-unavailable", "the database is unavailable; try again shortly")
    # A configuration or internal error: the operator's problem, not the caller's.
    log.error("%s: %s", exc.type, exc.message)
    return problem_response(request, 500, "internal-error", "the server could not handle the request")


async def _missing_reference(request: Request, exc: psycopg.errors.ForeignKeyViolation) -> JSONResponse:
    constraint = exc.diag.constraint_name or ""
    if constraint.endswith("owner_id_fkey"):
        # A token can outlive its user (deleted meanwhile): the token no longer stands for anyone.
        return problem_response(
            request, 401, "invalid-token", "the token's user does not exist", headers={"WWW-Authenticate": 'Bearer realm="orchestrate", error="invalid_token"'}
        )
    return problem_response(request, 409, "conflict", "a resource this request refers to was deleted meanwhile; retry")


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        errors.append({"path": ".".join(loc), "message": str(error.get("msg", "invalid")), "line": None, "column": None})
    return problem_response(request, 422, "invalid-request", "the request is invalid", errors=errors)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    if status == 404:
        detail = f"no such resource: {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    else:
        detail = str(exc.detail) if exc.detail else _title(status)
    errors = getattr(exc, "errors", None)  # jsonbody.BodyProblem locates what is wrong
    return problem_response(request, status, _STATUS_SLUGS.get(status, f"http-{status}"), detail, headers=exc.headers, errors=errors)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
