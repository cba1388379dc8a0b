"""Request and response bodies. Requests forbid unknown fields; responses are what
the routes return, so the published OpenAPI matches the wire."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from ..engine.records import Mode, RunStatus, StepStatus
from ..webhooks.ssrf import MAX_URL, UnsafeURL, parse_url

T = TypeVar("T")
MAX_SOURCE = 1024 * 1024


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorItem(BaseModel):
    path: str = Field(description="Where: a field path such as `steps[2].prompt` or `body.inputs`")
    message: str
    line: int | None = Field(None, description="1-based line in the workflow source, when known")
    column: int | None = None


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field(description="A stable slug, e.g. `not-found`, `invalid-workflow`, `invalid-token`")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ErrorItem] | None = None


class WorkflowSource(_In):
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE)] = Field(description="The workflow as YAML (or JSON) text")


class WorkflowSummary(BaseModel):
    id: UUID
    name: str
    description: str
    version: int = Field(description="Goes up by one on every update")
    created_at: dt.datetime
    updated_at: dt.datetime


class Workflow(WorkflowSummary):
    source: str | None
    spec: dict[str, Any] = Field(description="The normalized workflow")


class Validation(BaseModel):
    valid: bool
    name: str | None = None
    steps: list[str] = []
    inputs: dict[str, Any] = Field(default_factory=dict, description="The declared inputs")
    errors: list[ErrorItem] = []


def _webhook_url(value: str) -> str:
    """The URL's form, strictly (the address is checked by the route: it needs DNS)."""
    try:
        parse_url(value)
    except UnsafeURL as exc:
        raise PydanticCustomError("webhook_url", exc.message) from None
    return value


WebhookURL = Annotated[str, StringConstraints(max_length=MAX_URL), AfterValidator(_webhook_url)]


class RunRequest(_In):
    inputs: dict[str, Any] = Field(default_factory=dict)
    webhook_url: WebhookURL | None = Field(
        None, description="An http(s) URL on a public address, notified (Standard Webhooks) when the run ends; no credentials, no fragment"
    )
    mode: Mode = Field(Mode.AUTO, description="`step` pauses after each step until told to go on")


class InlineRunRequest(RunRequest):
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE)] = Field(description="The workflow as YAML text; not saved")


class ApproveRequest(_In):
    fields: dict[str, Any] = Field(default_factory=dict, description="The approval's declared fields, each of its type")


class RejectRequest(_In):
    reason: Annotated[str, StringConstraints(max_length=2000)] = Field("", description="Why: shown in the step's error")


class CallbackRequest(_In):
    action: Literal["approve", "reject"]
    fields: dict[str, Any] = Field(default_factory=dict, description="With `approve`: the declared fields")
    reason: Annotated[str, StringConstraints(max_length=2000)] = Field("", description="With `reject`: why")


class CallbackAnswer(BaseModel):
    run_id: UUID
    step_id: str
    status: StepStatus = Field(description="The step's status after the answer")


class RerunRequest(_In):
    from_: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        alias="from", description="The step to rerun from: it and every step downstream of it run again; the others reuse their answers"
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Inputs to change (the others keep the source run's values); a step that reads a changed input runs again"
    )
    outputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Edited answers of earlier steps, by step id: text, an object for a step with `outputs`, a list for a `for_each` step; what reads them runs again",
    )
    webhook_url: WebhookURL | None = Field(None, description="As when starting a run")
    mode: Mode = Field(Mode.AUTO, description="`step` pauses after each step until told to go on")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RunError(BaseModel):
    type: str
    message: str
    step_id: str | None = None


class StepItem(BaseModel):
    step: str = Field(description="The for_each step this item belongs to")
    index: int = Field(description="The item's place in the list, from 0")


class WaitingField(BaseModel):
    name: str
    type: str
    description: str = ""


class Waiting(BaseModel):
    """What a `waiting` step waits for (never a callback token)."""

    model_config = ConfigDict(extra="allow")
    kind: str = Field(description="`approval`, `wait` or `workflow`")
    until: dt.datetime | None = Field(None, description="When the wait ends (a wait's time, an approval's timeout); null: only an answer ends it")
    message: str | None = Field(None, description="An approval's rendered message")
    fields: list[WaitingField] = Field(default_factory=list, description="What an approval's answer carries")
    callback_expires_at: dt.datetime | None = Field(None, description="When the approval's callback URL stops working")


class Step(BaseModel):
    id: str = Field(description="The step's id; a for_each item is `step[index]`")
    kind: Literal["prompt", "http", "approval", "wait", "workflow"] = Field("prompt", description="What the step does")
    status: StepStatus
    attempt: int
    prompt: str | None
    output: str | None = Field(description="The answer; a for_each step's is the JSON list of its items' answers")
    outputs: dict[str, Any] | list[Any] | None = Field(description="The structured answer; a for_each step's is one entry per item")
    item: StepItem | None = None
    waiting: Waiting | None = Field(None, description="While the step is `waiting`: what it waits for")
    error: RunError | None
    model: str | None
    usage: Usage
    latency_ms: int | None
    queued_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    reused: bool = Field(False, description="A rerun's step not run again: its answer is the source run's (or the edited one); no tokens")
    child_run_id: UUID | None = Field(None, description="A `workflow` step: the child run it started")


class ParentLink(BaseModel):
    run_id: UUID
    step_id: str = Field(description="The parent's `workflow` step that started this run")


class RerunLink(BaseModel):
    run_id: UUID = Field(description="The run this one reran")
    from_: str = Field(alias="from", description="The step it reran from")


class RunSummary(BaseModel):
    id: UUID
    workflow: str | None = Field(description="The workflow's name")
    workflow_id: UUID | None
    status: RunStatus
    mode: Mode
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: RunError | None
    usage: Usage
    webhook_url: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_ms: int | None
    parent: ParentLink | None = Field(None, description="A child run: the run and `workflow` step that started it")
    rerun_of: RerunLink | None = Field(None, description="A rerun: the run it reran and the step it reran from")


class Run(RunSummary):
    steps: list[Step]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class Event(BaseModel):
    seq: int
    type: str = Field(description="`run.queued`, `step.started`, `step.succeeded`, `run.succeeded`, ...")
    step_id: str | None
    data: dict[str, Any]
    created_at: dt.datetime


class EventPage(BaseModel):
    events: list[Event]
    next_after: int = Field(description="Pass as `after` to continue")
    run_status: RunStatus = Field(description="The run's status when the request began")
    finished: bool = Field(description="True when the run had finished: no events will follow these")


class WebhookAttempt(BaseModel):
    at: dt.datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null if none was received")
    error: str | None = Field(description="Why the attempt failed; null if it succeeded")
    next_attempt_at: dt.datetime | None = Field(description="When the next attempt was scheduled; null if none was")


class WebhookDelivery(BaseModel):
    id: UUID
    webhook_id: UUID = Field(description="The `webhook-id` header; a redelivery repeats the original's")
    redelivery: bool
    event_type: str = Field(description="`run.succeeded`, `run.failed` or `run.cancelled`")
    url: str
    status: Literal["pending", "delivering", "succeeded", "failed"]
    next_attempt_at: dt.datetime | None = Field(description="When a pending delivery is tried next")
    created_at: dt.datetime
    attempts: list[WebhookAttempt] = Field(description="Every attempt, oldest first")


class WebhookDeliveries(BaseModel):
    items: list[WebhookDelivery] = Field(description="The run's deliveries, newest first (at most 100)")


class WebhookSecret(BaseModel):
    secret: str = Field(description="`whsec_...`: verify webhook signatures with it (Standard Webhooks)")
    created_at: dt.datetime
    rotated_at: dt.datetime | None


class Health(BaseModel):
    status: str
    version: str
    database: str


IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class SigninRequest(_In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(description="The code from a one-time sign-in link")


class SigninUser(BaseModel):
    id: UUID
    email: str | None


class SigninToken(BaseModel):
    access_token: str = Field(description="A development access token: send it as `Authorization: Bearer <token>`")
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")
    user: SigninUser


class Template(BaseModel):
    id: str = Field(description="The example's file name without `.yaml`, e.g. `launch_kit`")
    name: str
    description: str
    source: str = Field(description="The workflow's YAML, comments included")


class TemplateList(BaseModel):
    items: list[Template]


class SupabaseProject(BaseModel):
    url: str = Field(description="The project URL (Auth, Realtime and Storage live under it)")
    publishable_key: str = Field(description="The publishable (anon) key: public by design, never a secret key")


class PublicConfig(BaseModel):
    """What a client needs before signing in. Never holds a secret."""

    auth_mode: str = Field(description="`local` (one-time sign-in links, development tokens) or `supabase` (Supabase Auth)")
    supabase: SupabaseProject | None = Field(None, description="Present when the project URL and publishable key are configured")
    realtime: bool = Field(description="Run progress is broadcast on the private Realtime topic `run:<run_id>`")
    stored_exports: bool = Field(description="`POST /v1/runs/{id}/export` with `store: true` saves to Supabase Storage")


class ExportRequest(_In):
    format: Literal["json", "md"] = Field("json", description="`json` (the run as the API shows it) or `md` (a report)")
    # Only `true`: the file itself is `GET /v1/runs/{id}/export` (one way to download)
    store: Literal[True] = Field(True, description="Save the file in Supabase Storage and answer with a download URL")


class StoredExport(BaseModel):
    url: str = Field(description="A time-limited download URL of the stored file")
    expires_at: dt.datetime
    key: str = Field(description="The object's key in the bucket: `<user_id>/runs/<run_id>.<ext>`")
    format: Literal["json", "md"]
    bytes: int
