"""/v1/runs: start (from a stored workflow or inline), list, get, and control runs."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi import Path as PathParam

from ...engine.decide import Action
from ...engine.kinds import approval
from ...engine.records import RunState, RunStatus
from ...engine.rerun import RerunError
from ...spec import Plan, resolve_inputs
from ...settings import Settings
from ...webhooks.ssrf import LookupFailed, UnsafeURL, check_target
from ..auth import User
from ..deps import CurrentUser, Svc, decode_cursor, encode_cursor
from ..jsonbody import StrictJsonRoute
from ..problems import ApiProblem
from ..schemas import (
    ApproveRequest, ExportRequest, IdempotencyKey, InlineRunRequest, Page, RejectRequest, RerunRequest, Run, RunRequest, RunSummary, StoredExport,
)
from ..services import Services
from ._docs import problems
from .workflows import parse_source, stored_plan

if TYPE_CHECKING:
    from ...storage import ExportStorage

router = APIRouter(tags=["runs"], route_class=StrictJsonRoute)

IdempotencyHeader = Annotated[
    IdempotencyKey | None,
    Header(alias="Idempotency-Key", description="Repeat a request safely: the same key and body return the same run"),
]


def run_body(run: RunState) -> dict[str, Any]:
    return {**run.to_dict(), "webhook_url": run.webhook_url}


def request_hash(body: dict[str, Any], workflow_id: str | None) -> str:
    """The fingerprint an Idempotency-Key is bound to: the canonical JSON of the
    (parsed, defaults filled) body plus the workflow id."""
    canonical = json.dumps({"workflow_id": workflow_id, "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _start(
    svc: Services, user: User, plan: Plan, body: RunRequest, workflow_id: str | None, key: str | None, response: Response
) -> dict[str, Any]:
    inputs = resolve_inputs(plan.workflow, body.inputs)
    if body.webhook_url:
        await _check_webhook(body.webhook_url, svc.allow_private_webhooks)
    await _check_children(svc, user, plan)
    run_id = str(uuid.uuid4())
    try:
        run = await svc.engine.start(
            plan,
            inputs,
            run_id=run_id,
            owner_id=user.id,
            workflow_id=workflow_id,
            mode=body.mode,
            webhook_url=body.webhook_url,
            idempotency_key=key,
            request_hash=request_hash(body.model_dump(mode="json"), workflow_id) if key else None,
        )
    except psycopg.errors.ForeignKeyViolation:  # the workflow was deleted meanwhile
        raise ApiProblem(404, "not-found", f"workflow {workflow_id} not found") from None
    if run.id != run_id:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/runs/{run.id}"
    return run_body(run)


async def _check_children(svc: Services, user: User, plan: Plan) -> None:
    """Refuse a run whose `workflow` steps name a workflow the caller does not have
    (another user's is not found either): nothing starts. Their step checks again."""
    errors: list[dict[str, Any]] = []
    for sp in plan.steps.values():
        call = sp.step.workflow
        if call is not None and await svc.workflows.find(user.id, id=call.id, name=call.name) is None:
            field, value = ("id", call.id) if call.id is not None else ("name", call.name)
            errors.append({"path": f"steps[{sp.index}].workflow.{field}", "message": f"workflow {field} {value!r} not found", "line": None, "column": None})
    if errors:
        raise ApiProblem(422, "workflow-not-found", f"{errors[0]['message']}: save it first, or check the step's workflow", errors=errors)


async def _check_webhook(url: str, allow_private: bool) -> None:
    """Refuse a webhook URL that could never be delivered, naming why. Sending checks
    again (DNS changes); a lookup that cannot finish in time is left to that check."""
    try:
        await check_target(url, allow_private=allow_private)
    except (UnsafeURL, LookupFailed) as exc:
        error = {"path": "body.webhook_url", "message": exc.message, "line": None, "column": None}
        raise ApiProblem(422, exc.type, exc.message, errors=[error]) from None


@router.post("/v1/workflows/{workflow_id}/runs", status_code=202, response_model=Run, tags=["workflows"], responses=problems(404, 409))
async def start_run(workflow_id: UUID, body: RunRequest, response: Response, user: CurrentUser, svc: Svc, idempotency_key: IdempotencyHeader = None) -> dict[str, Any]:
    """Start a run of a stored workflow. Its inputs are checked first (422 lists every problem)."""
    record = await svc.workflows.get(user.id, str(workflow_id))
    if record is None:
        raise ApiProblem(404, "not-found", f"workflow {workflow_id} not found")
    return await _start(svc, user, stored_plan(record), body, record.id, idempotency_key, response)


@router.post("/v1/runs", status_code=202, response_model=Run, responses=problems(409))
async def start_inline_run(body: InlineRunRequest, response: Response, user: CurrentUser, svc: Svc, idempotency_key: IdempotencyHeader = None) -> dict[str, Any]:
    """Run a workflow given inline, without saving it."""
    plan = parse_source(body.source)
    return await _start(svc, user, plan, body, None, idempotency_key, response)


@router.post("/v1/runs/{run_id}/rerun", status_code=201, response_model=Run, responses=problems(404, 409))
async def rerun_run(run_id: UUID, body: RerunRequest, response: Response, user: CurrentUser, svc: Svc, idempotency_key: IdempotencyHeader = None) -> dict[str, Any]:
    """Start a new run of this run's spec snapshot from step `from`: the steps not
    downstream of it (nor of a changed input or an edited answer) are reused, finished at
    once with their recorded answers (`reused: true`, no model call, no tokens). The run
    must have finished (409 otherwise); the new run's `rerun_of` links it to this one."""
    source = await svc.store.get_run(str(run_id), user_id=user.id)
    if source is None:
        raise ApiProblem(404, "not-found", f"run {run_id} not found")
    if body.webhook_url:
        await _check_webhook(body.webhook_url, svc.allow_private_webhooks)
    new_id = str(uuid.uuid4())
    try:
        run = await svc.engine.rerun(
            source,
            body.from_,
            inputs=body.inputs,
            outputs=body.outputs,
            run_id=new_id,
            mode=body.mode,
            webhook_url=body.webhook_url,
            idempotency_key=idempotency_key,
            request_hash=request_hash(body.model_dump(mode="json", by_alias=True), f"rerun:{run_id}") if idempotency_key else None,
        )
    except RerunError as exc:
        errors = [{"path": f"body.{path}", "message": message, "line": None, "column": None} for path, message in exc.problems]
        raise ApiProblem(422, exc.type, "the rerun is invalid: " + exc.problems[0][1], errors=errors) from None
    if run.id != new_id:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/runs/{run.id}"
    return run_body(run)


@router.get("/v1/runs", response_model=Page[RunSummary], responses=problems(400))
async def list_runs(
    user: CurrentUser,
    svc: Svc,
    workflow_id: UUID | None = None,
    parent_run_id: Annotated[UUID | None, Query(description="Only the child runs of this run")] = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The caller's runs, newest first, optionally of one workflow, children of one run, or in one status."""
    runs = await svc.store.list_runs(
        user.id,
        workflow_id=str(workflow_id) if workflow_id else None,
        parent_run_id=str(parent_run_id) if parent_run_id else None,
        status=status,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    more = len(runs) > limit
    runs = runs[:limit]
    items = [{k: v for k, v in run_body(r).items() if k != "steps"} for r in runs]
    return {"items": items, "next_cursor": encode_cursor(runs[-1].created_at, runs[-1].id) if more else None}


@router.get("/v1/runs/{run_id}", response_model=Run, responses=problems(404))
async def get_run(run_id: UUID, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """The run with every step: status, output, structured outputs, error, usage, timings."""
    run = await svc.store.get_run(str(run_id), user_id=user.id)
    if run is None:
        raise ApiProblem(404, "not-found", f"run {run_id} not found")
    return run_body(run)


@router.get(
    "/v1/runs/{run_id}/export",
    response_class=Response,
    responses={
        200: {"description": "The run as a file", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}, "text/markdown": {"schema": {"type": "string"}}}},
        **problems(404),
    },
)
async def export_run(run_id: UUID, user: CurrentUser, svc: Svc, format: Literal["json", "md"] = "json") -> Response:
    """The run as a file to keep: `json` (the run as `GET /v1/runs/{id}` shows it) or `md`
    (a report: inputs, then each step with status, model, tokens, latency, prompt and answer)."""
    from ...export import MEDIA_TYPES

    body, name, text = await _export(svc, user, run_id, format)
    return Response(text, media_type=MEDIA_TYPES[format], headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/v1/runs/{run_id}/export", response_model=StoredExport, status_code=201, responses=problems(404))
async def store_export(run_id: UUID, body: ExportRequest, request: Request, user: CurrentUser, svc: Svc) -> Any:
    """Save the export in the service's Supabase Storage bucket as
    `<user_id>/runs/<run_id>.<ext>` and answer with a time-limited download URL.
    A service without a bucket (see `stored_exports` in `GET /v1/config`) answers 400
    `storage-not-configured`; Storage being down answers 503 `storage-unavailable`
    (`GET /v1/runs/{id}/export` keeps working)."""
    import asyncio

    from ...export import MEDIA_TYPES
    from ...storage import StorageUnavailable, object_key

    run, name, text = await _export(svc, user, run_id, body.format)  # another user's run: 404 first
    settings: Settings = request.app.state.settings
    if not settings.stores_exports:
        raise ApiProblem(
            400, "storage-not-configured", f"this service stores no exports: download the file with GET /v1/runs/{run_id}/export"
        )
    key = object_key(user.id, str(run["id"]), body.format)
    try:
        stored = await asyncio.to_thread(_storage(request).save, key, text.encode(), MEDIA_TYPES[body.format], name)
    except StorageUnavailable as exc:
        raise ApiProblem(503, "storage-unavailable", str(exc), headers={"Retry-After": "30"}) from None
    return {"url": stored.url, "expires_at": stored.expires_at, "key": stored.key, "format": body.format, "bytes": stored.size}


def _storage(request: Request) -> ExportStorage:
    from ...storage import ExportStorage

    storage: ExportStorage | None = getattr(request.app.state, "export_storage", None)
    if storage is None:
        storage = request.app.state.export_storage = ExportStorage(request.app.state.settings)
    return storage


async def _export(svc: Services, user: User, run_id: UUID, format: Literal["json", "md"]) -> tuple[dict[str, Any], str, str]:
    """The caller's run as (its JSON body, a file name, the file's text); 404 if not theirs."""
    from ...export import export_run as render
    from ...export import file_name

    run = await svc.store.get_run(str(run_id), user_id=user.id)
    if run is None:
        raise ApiProblem(404, "not-found", f"run {run_id} not found")
    body = Run.model_validate(run_body(run)).model_dump(mode="json")
    return body, file_name(body, format), render(body, format)


_CONTROLS = {
    Action.PAUSE: "Pause: no new step starts until resumed (running steps finish).",
    Action.RESUME: "Resume a paused run.",
    Action.STEP: "In step mode, let the next step run, then pause again.",
    Action.CANCEL: "Cancel: unfinished steps are cancelled and the run ends.",
    Action.RETRY: "Retry a failed run from its failed steps.",
}


def _control_route(action: Action) -> None:
    async def control(run_id: UUID, user: CurrentUser, svc: Svc) -> dict[str, Any]:
        return run_body(await svc.engine.control(str(run_id), action, user_id=user.id))

    control.__doc__ = _CONTROLS[action]
    router.add_api_route(
        f"/v1/runs/{{run_id}}/{action.value}",
        control,
        methods=["POST"],
        response_model=Run,
        responses=problems(404, 409),
        name=f"{action.value}_run",
        summary=f"{action.value.capitalize()} a run",
    )


for _action in _CONTROLS:
    _control_route(_action)


StepId = Annotated[str, PathParam(max_length=200)]


@router.post("/v1/runs/{run_id}/steps/{step_id}/approve", response_model=Run, responses=problems(404, 409))
async def approve_step(run_id: UUID, step_id: StepId, body: ApproveRequest, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """Approve a waiting approval step with its declared `fields` (422 names each field
    that is missing, of the wrong type or unknown). The run goes on. 409 if the step is
    not waiting for an answer (answered, timed out, cancelled)."""
    return run_body(await approval.answer(svc.engine, str(run_id), step_id, fields=body.fields, user_id=user.id))


@router.post("/v1/runs/{run_id}/steps/{step_id}/reject", response_model=Run, responses=problems(404, 409))
async def reject_step(run_id: UUID, step_id: StepId, body: RejectRequest, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    """Reject a waiting approval step: it fails with `approval-rejected` and the reason
    (the run fails, or goes on with `on_error: continue`, its `when:` branches reading
    `steps.<id>.status`). 409 if the step is not waiting for an answer."""
    return run_body(await approval.answer(svc.engine, str(run_id), step_id, reason=body.reason, user_id=user.id))

