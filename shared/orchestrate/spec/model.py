"""The workflow language as Pydantic models: the trust boundary for YAML and JSON.

Both prototype formats parse with these models: v0.1 (``id`` + ``prompt``) and v0.2
(step ``inputs`` with a ``source``, step ``outputs``). ``normalize`` then turns v0.2's
``source: user`` step inputs into workflow inputs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
MAX_ITEMS = 1000  # a for_each list's longest
DEFAULT_CONCURRENCY = 10
ON_ITEM_ERROR_PATTERN = r"^(fail|continue|(100|[0-9]{1,2})(\.[0-9]+)?%)$"
ValueType = Literal["string", "number", "integer", "boolean", "array", "object"]
StepKind = Literal["prompt", "http", "approval", "wait", "workflow"]
STEP_KINDS: tuple[StepKind, ...] = ("prompt", "http", "approval", "wait", "workflow")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """A workflow parameter supplied at run time. Required when it has no default."""

    type: ValueType = "string"
    description: str = ""
    default: Any = None

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set


class ModelSettings(_Strict):
    """Model call settings; a step's own values override the workflow's ``defaults``."""

    model: str | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    system: str | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None


class RetrySpec(_Strict):
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    initial_delay: Annotated[float, Field(ge=0, le=3600)] = 1.0
    max_delay: Annotated[float, Field(ge=0, le=86400)] = 60.0


class OutputSpec(_Strict):
    """A named field of a structured answer (arrays are arrays of strings)."""

    name: Annotated[str, Field(pattern=STEP_ID_PATTERN)]
    type: Literal["string", "number", "integer", "boolean", "array"] = "string"
    description: str = ""


class StepInput(_Strict):
    """The prototype's (v0.2) way to bring a value into a prompt as ``{{ name }}``:
    ``source`` is a step id (that step's output field ``name``, or its whole answer)
    or ``user`` (a workflow input)."""

    name: Annotated[str, Field(pattern=STEP_ID_PATTERN)]
    source: str
    description: str = ""


class HttpCall(_Strict):
    """An API call; ``url``, ``headers`` and ``body`` are templates."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Annotated[str, Field(min_length=1)]
    headers: dict[str, str] = {}
    body: Any = None  # text, or JSON whose strings are templates
    timeout: Annotated[float, Field(gt=0, le=300)] = 30.0


class Approval(_Strict):
    """A person (or a signed callback) answers before the run goes on."""

    message: str | None = None  # a template shown to whoever answers
    fields: list[OutputSpec] = []  # what the answer carries, checked like `outputs`
    timeout: Annotated[float, Field(gt=0, le=30 * 86400)] | None = None  # seconds
    on_timeout: Literal["reject", "default"] = "reject"
    default: dict[str, Any] | None = None  # the answer used when the wait times out


class WaitFor(_Strict):
    """A durable sleep: ``seconds`` from when the step starts, or ``until`` a time."""

    seconds: Annotated[float, Field(ge=0, le=365 * 86400)] | None = None
    until: Annotated[str, Field(min_length=1)] | None = None  # ISO 8601, a template


class WorkflowCall(_Strict):
    """Run one of the owner's saved workflows as a child run: by ``id`` or by ``name``
    (exactly one). ``inputs`` are the child's inputs; their strings are templates (one
    that is a single ``{{ expression }}`` gives its value: a list, a number)."""

    id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    version: Annotated[int, Field(ge=1)] | None = None  # the saved workflow must be at this version
    inputs: dict[Annotated[str, Field(pattern=STEP_ID_PATTERN)], Any] = {}

    @model_validator(mode="after")
    def _id_or_name(self) -> WorkflowCall:
        if (self.id is None) == (self.name is None):
            raise ValueError("a workflow step names its workflow by exactly one of `id` or `name`")
        return self


class OnErrorDefault(_Strict):
    default: Any  # the step succeeds with this (its output, or its `outputs` fields)


class Step(ModelSettings):
    id: Annotated[str, Field(pattern=STEP_ID_PATTERN, max_length=64)]
    # A step has exactly one kind: one of these five.
    prompt: Annotated[str, Field(min_length=1)] | None = None
    http: HttpCall | None = None
    approval: Approval | None = None
    wait: WaitFor | None = None
    workflow: WorkflowCall | None = None
    inputs: list[StepInput] = []
    outputs: list[OutputSpec] = []
    # One step id or a list of them (the parser reads `needs: a` as `[a]`; so does the schema).
    needs: Annotated[list[str], WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})] = []
    when: str | None = None
    # Map over a list: one execution per item, `{{ item }}` and `{{ loop.index }}` in the prompt.
    for_each: Annotated[str, Field(min_length=1)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=MAX_ITEMS)] | None = None  # items at once (default 10)
    on_item_error: Annotated[str, Field(pattern=ON_ITEM_ERROR_PATTERN)] = "fail"  # fail, continue or "N%"
    timeout: Annotated[float, Field(gt=0, le=900)] = 120.0
    retry: RetrySpec = RetrySpec()
    on_error: Literal["fail", "continue"] | OnErrorDefault = "fail"

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            given = "none" if not kinds else " and ".join(f"`{k}`" for k in kinds)
            raise ValueError(f"a step has exactly one of `prompt`, `http`, `approval`, `wait`, `workflow` (this one has {given})")
        return self

    @property
    def kind(self) -> StepKind:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def item_concurrency(self) -> int:
        return self.concurrency if self.concurrency is not None else DEFAULT_CONCURRENCY

    def tolerated_failures(self, items: int) -> int:
        """How many failed items `on_item_error` lets the step survive."""
        if self.on_item_error == "fail":
            return 0
        if self.on_item_error == "continue":
            return items
        return int(items * float(self.on_item_error.rstrip("%")) / 100)

    @field_validator("needs", mode="before")
    @classmethod
    def _one_need(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Workflow(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    # Text; a bare number (`version: 1.0`) is read as its text, so the schema allows both.
    version: Annotated[str | None, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]})] = None
    inputs: dict[Annotated[str, Field(pattern=STEP_ID_PATTERN)], InputSpec] = {}
    defaults: ModelSettings = ModelSettings()
    conversation: bool | None = None
    steps: Annotated[list[Step], Field(min_length=1, max_length=500)]

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # The prototype wrote `version: 1.0` (a float) as often as `version: "1.0"`.
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
