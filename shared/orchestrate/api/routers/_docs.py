"""OpenAPI fragments shared by the routers: the error responses each route may give."""

from __future__ import annotations

from typing import Any

from ..problems import PROBLEM_JSON
from ..schemas import Problem

_DESCRIPTIONS = {
    400: "Malformed request (e.g. an invalid cursor, a body that is not UTF-8 JSON)",
    401: "Missing or invalid access token",
    404: "Not found (or not yours)",
    409: "Conflict with the resource's state, or an Idempotency-Key reused with another request",
    413: "Request body too large",
    410: "Gone: a callback URL already used, or expired",
    415: "Unsupported media type",
    422: "Invalid request, workflow or inputs: every problem in `errors`",
    503: "A dependency (database, signing keys) is unavailable",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the listed statuses plus those every route may give.

    By reference, not ``"model": Problem``: FastAPI builds a serializer per route and
    status for a model (about a third of the API's import time) that only the OpenAPI
    document would use; ``openapi_components`` adds the schema once instead."""
    codes = sorted({400, 401, 413, 422, 503, *statuses})
    return {code: {"description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}} for code in codes}


def openapi_components() -> dict[str, Any]:
    """The schemas the routes refer to by hand: Problem (and what it uses)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    found = {**schema.pop("$defs", {}), "Problem": schema}
    for model in found.values():  # as FastAPI writes response models: no `default: null`
        for prop in model.get("properties", {}).values():
            if "default" in prop and prop["default"] is None:
                del prop["default"]
    return found
