"""/v1/workflows: create from YAML (raw or in JSON), validate, list, get, update, delete."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from ...db.workflows import WorkflowRecord
from ...errors import Problem, SpecError
from ...spec import Plan, dump_spec, parse_workflow
from ..deps import CurrentUser, Svc, decode_cursor, encode_cursor
from ..problems import ApiProblem, spec_errors
from ..schemas import Page, Validation, Workflow, WorkflowSource, WorkflowSummary
from ._docs import problems

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_SOURCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The workflow: JSON `{\"source\": \"<yaml>\"}`, or the YAML itself as `application/yaml`",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WorkflowSource"}},
            **{t: {"schema": {"type": "string"}} for t in ("application/yaml", "text/yaml")},
        },
    }
}


async def read_source(request: Request) -> str:
    """The workflow text of a request, whichever of the two forms it came in."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if media in YAML_TYPES:
        try:
            return raw.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise ApiProblem(422, "invalid-request", "the body is not valid UTF-8") from None
    if media == "application/json" or media.endswith("+json"):
        try:
            return WorkflowSource.model_validate(json.loads(raw)).source
        except ValueError as exc:  # JSONDecodeError and ValidationError both
            errors = _body_errors(exc)
            raise ApiProblem(422, "invalid-request", "the request body is invalid", errors=errors) from None
    raise ApiProblem(415, "unsupported-media-type", "send application/json ({\"source\": ...}) or application/yaml")


def _body_errors(exc: ValueError) -> list[dict[str, Any]]:
    if isinstance(exc, ValidationError):
        return [
            {"path": ".".join(["body", *(str(p) for p in e["loc"])]), "message": e["msg"], "line": None, "column": None}
            for e in exc.errors(include_url=False)
        ]
    if isinstance(exc, json.JSONDecodeError):
        return [{"path": "body", "message": f"invalid JSON: {exc.msg}", "line": exc.lineno, "column": exc.colno}]
    return [{"path": "body", "message": str(exc), "line": None, "column": None}]


def parse_source(source: str) -> Plan:
    """``parse_workflow``, with a net for YAML reader errors the spec layer lets through
    (a control character such as U+0096 is raised while the loader is being built)."""
    import yaml

    try:
        return parse_workflow(source)
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = source.count("\n", 0, position) + 1 if isinstance(position, int) else None
        column = position - (source.rfind("\n", 0, position) + 1) + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or "unreadable YAML"
        raise SpecError([Problem("", f"invalid YAML: {reason}", line, column)]) from None


def _workflow(record: WorkflowRecord) -> dict[str, Any]:
    return {**record.to_dict(), "id": record.id}


def _fields(plan: Plan, source: str) -> dict[str, Any]:
    return {"name": plan.workflow.name, "description": plan.workflow.description, "source": source, "spec": dump_spec(plan)}


@router.post("", status_code=201, response_model=Workflow, openapi_extra=_SOURCE_BODY, responses=problems(400, 415))
async def create_workflow(request: Request, response: Response, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """Validate and store a workflow."""
    source = await read_source(request)
    plan = parse_source(source)
    record = await svc.workflows.create(user.id, **_fields(plan, source))
    response.headers["Location"] = f"/v1/workflows/{record.id}"
    return _workflow(record)


@router.post("/validate", response_model=Validation, openapi_extra=_SOURCE_BODY, responses=problems(415))
async def validate_workflow(request: Request, user: CurrentUser) -> Validation:
    """Check a workflow without storing it: every problem, with its line."""
    source = await read_source(request)
    try:
        plan = parse_source(source)
    except SpecError as exc:
        return Validation(valid=False, errors=spec_errors(exc))  # type: ignore[arg-type]
    inputs = {name: spec.model_dump(exclude_unset=True) for name, spec in plan.workflow.inputs.items()}
    return Validation(valid=True, name=plan.workflow.name, steps=plan.order, inputs=inputs)


@router.get("", response_model=Page[WorkflowSummary], responses=problems(400))
async def list_workflows(
    user: CurrentUser,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$", description="Only workflows whose name contains this (any case)")] = None,
) -> dict[str, Any]:
    """The caller's workflows, newest first; `q` searches their names."""
    rows = await svc.workflows.list(user.id, limit=limit + 1, after=decode_cursor(cursor), name_contains=q or None)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_workflow(r) for r in rows], "next_cursor": encode_cursor(rows[-1].created_at, rows[-1].id) if more else None}


@router.get("/{workflow_id}", response_model=Workflow, responses=problems(404))
async def get_workflow(workflow_id: UUID, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    record = await svc.workflows.get(user.id, str(workflow_id))
    if record is None:
        raise ApiProblem(404, "not-found", f"workflow {workflow_id} not found")
    return _workflow(record)


@router.put("/{workflow_id}", response_model=Workflow, openapi_extra=_SOURCE_BODY, responses=problems(404, 415))
async def update_workflow(workflow_id: UUID, request: Request, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """Replace a workflow (its version goes up); runs already started keep their snapshot."""
    source = await read_source(request)
    plan = parse_source(source)
    record = await svc.workflows.update(user.id, str(workflow_id), **_fields(plan, source))
    if record is None:
        raise ApiProblem(404, "not-found", f"workflow {workflow_id} not found")
    return _workflow(record)


@router.delete("/{workflow_id}", status_code=204, response_class=Response, responses=problems(404))
async def delete_workflow(workflow_id: UUID, user: CurrentUser, svc: Svc) -> Response:
    """Delete a workflow; its runs stay (they hold their own copy of the spec)."""
    if not await svc.workflows.delete(user.id, str(workflow_id)):
        raise ApiProblem(404, "not-found", f"workflow {workflow_id} not found")
    return Response(status_code=204)
