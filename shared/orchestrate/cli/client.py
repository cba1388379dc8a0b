"""A small client of a running Orchestrate API, for ``submit`` and ``watch``.

URL and token come from the command line, the environment (ORCHESTRATE_API_URL,
ORCHESTRATE_TOKEN), or the config file ``serve`` and ``token`` write."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..engine.records import Event
from ..errors import InputError, OrchestrateError, Problem, SpecError
from ..settings import Settings

if TYPE_CHECKING:
    from .live import RealtimeConfig

DEFAULT_URL = "http://127.0.0.1:8000"
POLL_WAIT = 20  # seconds per long-poll of the events endpoint


class ApiClientError(OrchestrateError):
    type = "api-client-error"


def config_file() -> Path:
    import platformdirs

    return platformdirs.user_config_path("orchestrate", appauthor=False) / "client.json"


def read_config() -> dict[str, Any]:
    try:
        data = json.loads(config_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_config(**values: str) -> Path:
    """Merge ``values`` into the client config file (readable by this user only)."""
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**read_config(), **values}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    return path


def api_url(settings: Settings, url: str | None = None) -> str:
    """The server's URL: ``url``, else an explicit setting, else the file ``serve``
    writes, else the built-in default."""
    configured = settings.api_url if settings.api_url != DEFAULT_URL else None
    return (url or configured or read_config().get("api_url") or DEFAULT_URL).rstrip("/")


class ApiClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = POLL_WAIT + 15) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None, token: str | None = None) -> ApiClient:
        token = token or settings.api_token or read_config().get("token")
        if not token:
            raise ApiClientError("no API token: run `orchestrate token` (local server), or set ORCHESTRATE_TOKEN")
        return cls(api_url(settings, url), token)

    def request(self, method: str, path: str, *, file: str | None = None, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiClientError(
                f"cannot reach the Orchestrate API at {self.url} ({type(exc).__name__}): "
                "start it with `orchestrate serve`, or set ORCHESTRATE_API_URL"
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        raise _error(response, file)

    def watch(self, run_id: str, on_event: Callable[[Event], None]) -> dict[str, Any]:
        """Follow the run's events until it has finished; return the finished run.
        Pushed through Supabase Realtime when the service broadcasts (``/v1/config``),
        else long-polled."""
        realtime = self.realtime()
        if realtime is not None and self.token:
            from .live import LiveRefused, LiveUnavailable

            try:
                asyncio.run(self._follow_live(realtime, run_id, self.token, on_event))
                return self.request("GET", f"/v1/runs/{run_id}")  # type: ignore[no-any-return]
            except LiveRefused as exc:
                raise ApiClientError(str(exc)) from None
            except LiveUnavailable:
                pass  # nothing shown yet: long-poll instead
        return self._poll(run_id, on_event)

    def realtime(self) -> RealtimeConfig | None:
        """The project's Realtime, when the service says it broadcasts run progress."""
        from .live import RealtimeConfig

        try:
            config = self.request("GET", "/v1/config")
            project = config["supabase"] if config.get("realtime") else None
            return RealtimeConfig(str(project["url"]).rstrip("/"), str(project["publishable_key"])) if project else None
        except (OrchestrateError, KeyError, TypeError, AttributeError):
            return None  # an older server, or none of it configured: long-poll

    async def _follow_live(self, realtime: RealtimeConfig, run_id: str, token: str, on_event: Callable[[Event], None]) -> None:
        from .live import follow, page_fetcher

        current = {"token": token}

        async def fresh_token() -> str | None:
            # A token saved meanwhile (`orchestrate token`, a sign-in) replaces ours.
            saved = read_config().get("token")
            if isinstance(saved, str) and saved and saved != current["token"]:
                current["token"] = saved
                return saved
            return None

        async with httpx.AsyncClient(base_url=self.url, timeout=self.http.timeout) as http:
            fetch = page_fetcher(http, run_id, lambda: {"Authorization": f"Bearer {current['token']}"})
            try:
                await follow(realtime, run_id, token, fetch, on_event, fresh_token=fresh_token)
            except httpx.HTTPStatusError as exc:
                raise _error(exc.response, None) from None
            except httpx.TransportError as exc:
                raise ApiClientError(f"cannot reach the Orchestrate API at {self.url} ({type(exc).__name__})") from None

    def _poll(self, run_id: str, on_event: Callable[[Event], None]) -> dict[str, Any]:
        after = 0
        while True:
            page = self.request("GET", f"/v1/runs/{run_id}/events", params={"after": after, "wait": POLL_WAIT})
            for e in page["events"]:
                on_event(Event(run_id, e["seq"], e["type"], e["step_id"], e["data"], dt.datetime.fromisoformat(e["created_at"])))
            after = page["next_after"]
            if page["finished"]:
                return self.request("GET", f"/v1/runs/{run_id}")  # type: ignore[no-any-return]

def _error(response: httpx.Response, file: str | None) -> OrchestrateError:
    try:
        problem = response.json()
        slug, detail, errors = problem["type"], problem["detail"], problem.get("errors") or []
    except (ValueError, KeyError, TypeError):
        return ApiClientError(f"the API answered {response.status_code} {response.reason_phrase}")
    if slug == "invalid-workflow":
        return SpecError([Problem(e["path"], e["message"], e.get("line"), e.get("column")) for e in errors], file)
    if slug == "invalid-inputs" and errors:
        return InputError([e["message"] for e in errors])
    if errors and [e.get("message") for e in errors] != [detail]:  # not when the one error is the detail
        detail += ": " + "; ".join(f"{e['path']}: {e['message']}" if e.get("path") else e["message"] for e in errors)
    if response.status_code == 401:
        return ApiClientError(f"the API refused the token ({detail}): get one with `orchestrate token`, or set ORCHESTRATE_TOKEN")
    return ApiClientError(f"{detail} ({response.status_code} {slug})")
