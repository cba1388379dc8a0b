"""An http step: render the request (url, headers, body; the owner's secrets in url and
headers), send it through the SSRF guard (``net.guarded``), and answer with what came
back. 429, 5xx, timeouts and connection errors are retried like a model's transient
errors; any other 4xx, a redirect or an oversize answer fails the step at once.

A secret's value never leaves this module except in the request itself: the request the
step records is rendered again with placeholders (``[secret NAME]``), and every message
and answer is scrubbed of the values (and of what was rendered from them)."""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import OrchestrateError, Problem, RunRefused, TemplateError
from ...net.ssrf import LookupFailed, Lookups, UnsafeURL, judge, parse_url
from ...spec.model import HttpCall, OutputSpec
from ...spec.plan import for_each_expression
from ...templates import MAX_RENDERED, evaluate_value, in_render_thread, namespace, render
from ...vault import SecretUnreadable
from .. import decide
from ..records import ErrorInfo, Usage
from ..store import Claim, Failure, Outcome, Retry, Success
from .prompt import MAX_ITEM_ANSWER, backoff, without_nul, without_nul_data

if TYPE_CHECKING:
    from ...settings import Settings
    from ...spec import Plan
    from ..core import Engine

log = logging.getLogger("orchestrate.engine")
NOUN = "HTTP"
MAX_RETRY_AFTER = 900.0  # seconds: the longest a queue message can be delayed
EXCERPT = 200  # characters of an error answer quoted in the step's error
_LOOKUPS: Lookups | None = None


@dataclass(frozen=True)
class HttpPolicy:
    """What an http step may reach and read (from settings)."""

    allow_private: bool = False  # private and loopback addresses (local development)
    max_response: int = 1 << 20  # bytes of an answer; a longer one fails the step

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpPolicy:
        return cls(allow_private=settings.webhook_allow_private, max_response=settings.http_max_response)


@dataclass(frozen=True)
class Rendered:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None
    timeout: float  # seconds for the whole exchange
    shown: str  # the request as recorded: secrets as [secret NAME]
    redactions: tuple[tuple[str, str], ...]  # (sent text, shown text), longest first


async def execute(engine: Engine, plan: Plan, claim: Claim) -> Outcome:
    sp = plan.steps[decide.plan_step(claim.step_id)]
    http = sp.step.http
    assert http is not None
    run, step_id = claim.run, claim.step_id
    item = run.steps[step_id].item
    try:
        values = await engine.secrets.reveal(run.owner_id, sorted(sp.secrets)) if sp.secrets and engine.secrets else {}
    except SecretUnreadable as exc:
        return Failure(ErrorInfo(exc.type, exc.message, step_id))
    missing = sorted(sp.secrets - values.keys())
    if missing:
        return Failure(ErrorInfo("secret-not-found", _missing_message(missing), step_id))
    context = decide.prompt_context(plan, sp.step.id, run.inputs, run.steps)
    if item is not None:
        context.update(decide.item_context(item))
    try:
        request = await in_render_thread(render_request, http, context, values)
    except TemplateError as exc:
        return Failure(ErrorInfo(exc.type, scrub(exc.message, _pairs(values)), step_id))
    shown = request.shown
    outcome = await _send(engine.http, request, sp.step.timeout)
    if isinstance(outcome, _Transient):
        error = ErrorInfo(outcome.type, scrub(outcome.message, request.redactions), step_id)
        if claim.attempts_used < sp.step.retry.max_attempts:
            return Retry(error, max(backoff(sp, claim.attempts_used), outcome.retry_after or 0.0), shown)
        return Failure(ErrorInfo(error.type, f"{error.message} (gave up after {claim.attempts_used} attempts)", step_id), shown)
    if isinstance(outcome, ErrorInfo):
        return Failure(ErrorInfo(outcome.type, scrub(outcome.message, request.redactions), step_id), shown)
    text, latency = outcome
    text = scrub(without_nul(text), request.redactions)
    if item is not None and len(text) > MAX_ITEM_ANSWER:
        message = f"the answer of item {step_id} is {len(text)} characters; an item's answer may have at most {MAX_ITEM_ANSWER}"
        return Failure(ErrorInfo("output-too-large", message, step_id), shown)
    outputs = None
    if sp.step.outputs:
        checked = declared_outputs(text, sp.step.outputs)
        if isinstance(checked, str):
            return Failure(ErrorInfo("output-mismatch", f"{request.method} {_url_of(shown)}: {checked}", step_id), shown)
        outputs = without_nul_data(checked)
    return Success(shown, text, outputs, "", Usage(), latency)


@dataclass(frozen=True)
class _Transient:
    type: str
    message: str
    retry_after: float | None = None


async def _send(policy: HttpPolicy, request: Rendered, step_timeout: float) -> tuple[str, int] | ErrorInfo | _Transient:
    """Send the request: the answer's text and the latency, the error that fails the
    step, or a transient error worth another attempt."""
    import httpx

    from ...net.guarded import request as send

    global _LOOKUPS
    if _LOOKUPS is None:  # threads of their own: webhook lookups and step lookups never wait on each other
        _LOOKUPS = Lookups(8, noun=NOUN)
    what = f"{request.method} {_url_of(request.shown)}"
    started = time.perf_counter()
    try:
        answer = await send(
            request.method,
            request.url,
            headers=request.headers,
            content=request.content,
            timeout=min(step_timeout, request.timeout),
            max_bytes=policy.max_response,
            allow_private=policy.allow_private,
            resolver=_LOOKUPS,
            noun=NOUN,
        )
    except UnsafeURL as exc:
        return ErrorInfo("unsafe-url", exc.message)
    except LookupFailed as exc:
        return ErrorInfo("http-unreachable", exc.message) if exc.missing else _Transient("http-unavailable", exc.message)
    except TimeoutError:
        return _Transient("http-timeout", f"{what}: no complete answer within {request.timeout:g}s")
    except httpx.HTTPError as exc:
        return _Transient("http-unavailable", f"{what}: {type(exc).__name__}: {exc}"[:500])
    except Exception as exc:  # a bug; logged without a traceback, whose messages could carry a secret
        log.error("http step %s failed unexpectedly: %s: %s", what, type(exc).__name__, scrub(str(exc), request.redactions)[:300])
        return ErrorInfo("internal-error", f"{what}: the request failed unexpectedly; the error was logged")
    latency = int((time.perf_counter() - started) * 1000)
    status = answer.status
    if 300 <= status < 400:
        location = answer.headers.get("location", "")[:500]
        return ErrorInfo("http-redirect", f"{what} answered {status}, a redirect to {location or '(no Location)'}; redirects are not followed: use the final URL")
    if status == 429 or status >= 500:
        return _Transient("http-error", f"{what} answered {status}{_excerpt(answer.body)}", _retry_after(answer.headers) if status == 429 else None)
    if status >= 400:
        return ErrorInfo("http-error", f"{what} answered {status}{_excerpt(answer.body)}")
    if answer.cut:
        return ErrorInfo("http-response-too-large", f"{what}: the answer is larger than {_size(policy.max_response)} (ORCHESTRATE_HTTP_MAX_RESPONSE); it was not kept")
    if status < 200:  # pragma: no cover - httpx reads past informational answers
        return ErrorInfo("http-error", f"{what} answered {status}")
    return _decode(answer.body, answer.headers.get("content-type", "")), latency


def render_request(http: HttpCall, context: dict[str, Any], values: Mapping[str, str]) -> Rendered:
    """Render the call twice: as sent (with the secrets) and as recorded (placeholders).
    Runs in a render thread. TemplateError names the part that failed."""
    placeholders = {name: f"[secret {name}]" for name in values}
    sent = {**context, "secrets": namespace(dict(values))}
    recorded = {**context, "secrets": namespace(placeholders)}
    pairs: list[tuple[str, str]] = _pairs(values)
    url = _render("url", http.url, sent)
    shown_url = _render("url", http.url, recorded) if values else url
    if url != shown_url:
        pairs.append((url, shown_url))
    headers: dict[str, str] = {}
    shown_headers: dict[str, str] = {}
    for name, source in http.headers.items():
        value = _render(f"header {name}", source, sent).strip()
        shown = _render(f"header {name}", source, recorded).strip() if values else value
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or not value.isascii():
            raise TemplateError(f"header {name}: the rendered value must be printable ASCII on one line")
        headers[name] = value
        shown_headers[name] = shown
        if value != shown:
            pairs.append((value, shown))
    content: bytes | None = None
    lower = {k.lower() for k in headers}
    if http.body is not None and http.method != "HEAD":
        if isinstance(http.body, str):
            text = _render("body", http.body, context)
            kind = "text/plain; charset=utf-8"
        else:
            text = json.dumps(_render_json(http.body, context), ensure_ascii=False)
            kind = "application/json"
        if len(text) > MAX_RENDERED:
            raise TemplateError("the rendered body is larger than 1 MiB")
        content = text.encode()
        if "content-type" not in lower:
            headers["Content-Type"] = shown_headers["Content-Type"] = kind
    if "user-agent" not in lower:
        headers["User-Agent"] = shown_headers["User-Agent"] = "Orchestrate-HTTP/1"
    lines = [f"{http.method} {shown_url}", *(f"{k}: {v}" for k, v in shown_headers.items())]
    shown_text = "\n".join(lines) + ("\n\n" + content.decode() if content else "")
    return Rendered(http.method, url, headers, content, http.timeout, shown_text, tuple(_longest_first(pairs)))


def _render(part: str, source: str, context: dict[str, Any]) -> str:
    try:
        return render(source, context)
    except TemplateError as exc:
        raise TemplateError(f"{part}: {exc.message}") from None


def _render_json(value: Any, context: dict[str, Any]) -> Any:
    """A JSON body: every string is a template; a string that is exactly one
    ``{{ expression }}`` keeps its value's type (a number, a list, an object)."""
    if isinstance(value, dict):
        return {k: _render_json(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, context) for v in value]
    if not isinstance(value, str):
        return value
    expression = for_each_expression(value)
    if expression is None:
        return _render("body", value, context)
    try:
        result = evaluate_value(expression, context, "body")
    except TemplateError as exc:
        raise TemplateError(f"body: {exc.message}") from None
    return _plain(result)


def _plain(value: Any) -> Any:
    """A template value as JSON data (a step's outputs are namespaces to templates)."""
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _pairs(values: Mapping[str, str]) -> list[tuple[str, str]]:
    return _longest_first([(v, f"[secret {k}]") for k, v in values.items() if v])


def _longest_first(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each (sent, shown) pair, also as it appears inside a JSON string (an answer that
    echoes a value with a quote or a non-ASCII character in it), longest first."""
    out = dict(pairs)
    for sent, shown in pairs:
        for ascii_only in (True, False):
            out.setdefault(json.dumps(sent, ensure_ascii=ascii_only)[1:-1], shown)
    return sorted(out.items(), key=lambda p: -len(p[0]))


def scrub(text: str, pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    """``text`` with every secret value (and every text rendered from one) replaced."""
    for sent, shown in pairs:
        if sent:
            text = text.replace(sent, shown)
    return text


def _url_of(shown: str) -> str:
    return shown.split("\n", 1)[0].split(" ", 1)[1]


def _decode(body: bytes, content_type: str) -> str:
    charset = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    try:
        return body.decode(charset.group(1) if charset else "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    if not text:
        return ""
    return ": " + (text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n / 1024:g} KiB" if n >= 1024 else f"{n} bytes"


_JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,), "array": (list,)}


def declared_outputs(text: str, outputs: list[OutputSpec]) -> dict[str, Any] | str:
    """The declared fields of a JSON object answer, or what does not match them."""
    try:
        data = json.loads(text)
    except ValueError:
        return "the answer is not JSON, but the step declares `outputs`"
    if not isinstance(data, dict):
        return f"the answer is JSON {type(data).__name__ if data is not None else 'null'}, not an object, but the step declares `outputs`"
    found: dict[str, Any] = {}
    for out in outputs:
        if out.name not in data:
            return f"the answer has no field '{out.name}' (declared in `outputs`)"
        value = data[out.name]
        ok = isinstance(value, _JSON_TYPES[out.type]) and not (isinstance(value, bool) and out.type != "boolean")
        if out.type == "integer" and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            return f"field '{out.name}' of the answer is {_kind(value)}, not {out.type} (declared in `outputs`)"
        found[out.name] = value
    return found


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _missing_message(names: list[str]) -> str:
    listed = ", ".join(names)
    return f"secret{'s' if len(names) > 1 else ''} {listed} not found: set {'them' if len(names) > 1 else 'it'} with PUT /v1/secrets/{names[0]} (or `orchestrate secrets set {names[0]}`)"


async def preflight(plan: Plan, owner_id: str | None, engine: Engine) -> None:
    """Before a run is created: every secret it reads exists, and every http URL written
    without templates may be reached here. RunRefused names the step, nothing is created."""
    used = plan.secrets
    if used:
        missing = await engine.secrets.missing(owner_id, list(used)) if engine.secrets else sorted(used)
        if missing:
            problems = [Problem(f"steps[{plan.steps[used[name][0]].index}].http", _missing_message([name])) for name in missing]
            raise RunRefused("secret-not-found", problems)
    unsafe: list[Problem] = []
    for sp in plan.steps.values():
        url = sp.step.http.url if sp.step.http is not None else None
        if url is None or "{{" in url or "{%" in url:
            continue
        try:
            judge(parse_url(url, NOUN), engine.http.allow_private, NOUN)
        except OrchestrateError as exc:
            unsafe.append(Problem(f"steps[{sp.index}].http.url", exc.message))
    if unsafe:
        raise RunRefused("unsafe-url", unsafe)


__all__ = ["HttpPolicy", "execute", "preflight"]
