"""/v1/secrets: the caller's named secrets for http steps. Values go in, never out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from ...db.secrets import PostgresSecrets
from ...vault import name_problem, value_problem
from ..deps import CurrentUser, Svc
from ..jsonbody import StrictJsonRoute
from ..problems import ApiProblem
from ..schemas import SecretNames, SecretValue
from ..services import Services
from ._docs import problems

router = APIRouter(tags=["secrets"], route_class=StrictJsonRoute)

SecretPath = Annotated[str, Path(max_length=200, description="Upper-case letters, digits and _, starting with a letter (API_TOKEN)")]


def _checked(name: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise ApiProblem(422, "invalid-secret-name", problem, errors=[{"path": "path.name", "message": problem, "line": None, "column": None}])
    return name


def _secrets(svc: Services) -> PostgresSecrets:
    if svc.secrets is None:  # pragma: no cover - every service is built with its secrets
        raise ApiProblem(503, "unavailable", "secrets are not available on this service")
    return svc.secrets


@router.put("/v1/secrets/{name}", status_code=204, responses=problems())
async def put_secret(name: SecretPath, body: SecretValue, user: CurrentUser, svc: Svc) -> Response:
    """Create or replace a secret. Use it as `{{ secrets.NAME }}` in an http step's url or headers."""
    _checked(name)
    problem = value_problem(body.value)
    if problem is not None:
        raise ApiProblem(422, "invalid-secret-value", problem, errors=[{"path": "body.value", "message": problem, "line": None, "column": None}])
    await _secrets(svc).put(user.id, name, body.value)
    return Response(status_code=204)


@router.get("/v1/secrets", response_model=SecretNames, responses=problems())
async def list_secrets(user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """Your secrets' names and when they were set; values are never returned."""
    return {"items": await _secrets(svc).names(user.id)}


@router.delete("/v1/secrets/{name}", status_code=204, responses=problems(404))
async def delete_secret(name: SecretPath, user: CurrentUser, svc: Svc) -> Response:
    """Delete a secret. Runs that read it afterwards fail with `secret-not-found`."""
    _checked(name)
    if not await _secrets(svc).delete(user.id, name):
        raise ApiProblem(404, "not-found", f"secret {name} not found")
    return Response(status_code=204)
