"""``orchestrate serve | token | submit | watch``: the local service and its clients.

Mounted on the main CLI with ``register(app)``."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..errors import ConfigError
from ..settings import Settings
from .app import EXIT_FAILED, err, guard, out

DEFAULT_EMAIL = "dev@orchestrate.local"


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    mock: Annotated[bool, typer.Option("--mock", help="Use the built-in mock model (no API key needed).")] = False,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request.")] = True,
) -> None:
    """Run the HTTP API and a worker in this process, on the embedded PostgreSQL (or DATABASE_URL)."""
    from ..db.embedded import resolve_database_url
    from ..db.migrate import migrate
    from ..llm import make_provider
    from .client import save_config
    from .devauth import ensure_user, links_enabled, secret_file, with_local_auth

    with guard():
        configured = Settings.from_env()
        settings = with_local_auth(configured.with_(use_mock=True) if mock else configured)
        provider = make_provider(settings)
        listener = _listen(host, port)
        url = f"http://{_client_host(host)}:{listener.getsockname()[1]}"
        _log_to_stderr()  # from the start: adopting an orphaned embedded server is worth a line
        try:
            with resolve_database_url(settings.database_url) as target:
                migrate(target.conninfo)
                save_config(api_url=url)
                local_secret = None if configured.supabase_jwt_secret or settings.supabase_url else secret_file()
                _banner(settings, url, target.description, local_secret)
                if links_enabled(settings):
                    err.print(f"  [bold]Studio:[/] {studio_link(target.conninfo, url, ensure_user(target.conninfo, DEFAULT_EMAIL))}", highlight=False)
                    err.print("    (one-time sign-in link, valid 10 minutes; another: orchestrate token --link)", highlight=False)
                # uvicorn stops on SIGINT/SIGTERM, then re-raises the signal: make both a
                # KeyboardInterrupt so the worker, the pool and the embedded server close.
                previous = signal.signal(signal.SIGTERM, _interrupt)
                try:
                    asyncio.run(_serve(settings, target.conninfo, provider, listener, access_log, url))
                except KeyboardInterrupt:
                    err.print("stopped", highlight=False)
                finally:
                    signal.signal(signal.SIGTERM, previous)
        finally:
            listener.close()


def _banner(settings: Settings, url: str, database: str, local_secret: Path | None) -> None:
    model = "mock model" if settings.use_mock else f"model {settings.default_model} via {settings.openai_base_url or 'OpenAI'}"
    if settings.supabase_url:
        auth = f"tokens of the Supabase project {settings.supabase_url}"
    else:
        auth = "development tokens" + (f" (secret in {local_secret})" if local_secret else " (SUPABASE_JWT_SECRET)")
    err.print(f"[bold green]Orchestrate API[/] on [bold]{url}[/]  (docs: {url}/docs)", highlight=False)
    err.print(f"  database: {escape(database)}\n  steps: {escape(model)}\n  auth: {escape(auth)}", highlight=False)
    if not settings.supabase_url:
        err.print("  get a token:  [bold]export ORCHESTRATE_TOKEN=$(orchestrate token)[/]", highlight=False)


def studio_link(conninfo: str, url: str, user_id: str) -> str:
    """A one-time sign-in link to the Studio. The code rides in the fragment, which the
    browser never sends: it stays out of server logs and Referer headers."""
    from ..db.signin import create_code

    return f"{url}/#/signin?code={create_code(conninfo, user_id)}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _serve(settings: Settings, conninfo: str, provider: Any, listener: socket.socket, access_log: bool, url: str) -> None:
    import uvicorn

    from ..api import create_app, local_stack

    async with local_stack(
        conninfo,
        provider,
        default_model=settings.default_model,
        allow_private_webhooks=settings.webhook_allow_private,
        max_in_flight=settings.run_max_in_flight,
        max_workflow_depth=settings.max_workflow_depth,
        # Approval callback URLs point here (ORCHESTRATE_API_URL when it is set: a proxy in front).
        api_url=settings.api_url if settings.api_url != Settings().api_url else url,
    ) as services:
        app = create_app(settings, services=services)

        class Server(uvicorn.Server):
            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                services.watch.stop()  # end idle event streams now, not after the grace period
                await super().shutdown(sockets)

        server = Server(uvicorn.Config(app, log_level="info", access_log=access_log, lifespan="on", timeout_graceful_shutdown=5))
        await server.serve(sockets=[listener])


def _log_to_stderr() -> None:
    """Our loggers beside uvicorn's, in its format; other libraries stay quiet."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger = logging.getLogger("orchestrate")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    # psycopg's pool logs each failed reconnect and discarded connection; our own lines
    # already say, once per step or request, that the database is unavailable.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())


def _listen(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a busy port is one clear message."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another with --port/--host") from None
    return sock


def _client_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def token(
    user: Annotated[str, typer.Option("--user", help="The user's email; created in the local database if needed.")] = DEFAULT_EMAIL,
    hours: Annotated[float, typer.Option(help="Hours until the token expires.", min=0.01, max=24 * 365)] = 24.0,
    save: Annotated[bool, typer.Option(help="Also save it for `submit` and `watch`.")] = True,
    link: Annotated[bool, typer.Option("--link", help="Print a one-time sign-in link for the Studio instead (works once, for 10 minutes).")] = False,
    url: Annotated[str | None, typer.Option(help="The server's URL in the link (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Print a development access token for the local server (signed with the local secret),
    or with --link a one-time sign-in link for the Studio."""
    from ..db.embedded import resolve_database_url
    from .client import api_url, save_config
    from .devauth import ensure_user, mint, signing_secret

    with guard():
        settings = Settings.from_env()
        signing_secret(settings)  # refuse a hosted project before touching any database
        with resolve_database_url(settings.database_url) as target:
            user_id = ensure_user(target.conninfo, user)
            if link:
                print(studio_link(target.conninfo, api_url(settings, url), user_id))
                err.print(f"one-time sign-in link for {escape(user)}: open it in a browser within 10 minutes; it works once", highlight=False)
                return
        value = mint(settings, user_id, user, hours=hours)
        if save:
            save_config(token=value)
    print(value)
    err.print(f"token for {escape(user)} (user {user_id}), valid {hours:g} h" + ("; saved for submit/watch" if save else ""), highlight=False)


def submit(
    file: Annotated[Path, typer.Argument(help="The workflow file.")],
    input: Annotated[list[str], typer.Option("--input", "-i", help="An input as name=value (repeatable).")] = [],  # noqa: B006
    mode: Annotated[str, typer.Option(help="auto, or step (pause after each step).")] = "auto",
    webhook_url: Annotated[str | None, typer.Option("--webhook-url", help="Notify this URL when the run ends (Standard Webhooks).")] = None,
    watch_run: Annotated[bool, typer.Option("--watch/--no-watch", help="Follow the run until it ends.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the finished run as JSON on stdout.")] = False,
    url: Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Run a workflow file on a running Orchestrate service."""
    from ..spec import load_workflow, parse_pairs
    from ..spec.yamlsource import read_text
    from .client import ApiClient

    with guard():
        plan = load_workflow(file)  # every problem at once, before the network
        inputs = parse_pairs(plan.workflow, input)
        client = ApiClient.from_settings(Settings.from_env(), url)
        body = {"source": read_text(file), "inputs": inputs, "mode": mode} | ({"webhook_url": webhook_url} if webhook_url else {})
        run = client.request("POST", "/v1/runs", json=body, file=str(file))
        err.print(f"run [bold]{run['id']}[/] queued on {escape(client.url)}", highlight=False)
        if not watch_run:
            print(run["id"])
            return
        follow(client, run, as_json)


def watch(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the finished run as JSON on stdout.")] = False,
    url: Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Show a run's live progress until it ends; exit 1 if it did not succeed."""
    from .client import ApiClient

    with guard():
        client = ApiClient.from_settings(Settings.from_env(), url)
        run = client.request("GET", f"/v1/runs/{run_id}")
        follow(client, run, as_json)


def follow(client: Any, run: dict[str, Any], as_json: bool) -> None:
    """Show the run's progress until it ends, then its outcome; exit 1 unless it succeeded."""
    from .progress import Progress, ProgressView

    from ..engine.records import Event
    from .answers import how_to_answer

    view = ProgressView(f"{run['workflow']} · run {run['id'][:8]}", [s["id"] for s in run["steps"]])
    with Progress(err, view) as progress:

        def show(event: Event) -> None:
            progress(event)
            if event.type == "step.waiting" and event.data.get("kind") == "approval":
                err.print(escape(how_to_answer(run["id"], event)), highlight=False)

        final = client.watch(run["id"], show)
    if as_json:
        print(json.dumps(final, indent=2, ensure_ascii=False))
    colour = "green" if final["status"] == "succeeded" else "red"
    tokens = final["usage"]["total_tokens"]
    seconds = (final["duration_ms"] or 0) / 1000
    out_console = err if as_json else out
    out_console.print(f"[bold {colour}]{final['status']}[/] in {seconds:.2f}s · {len(final['steps'])} steps · {tokens} tokens · run {final['id']}", highlight=False)
    if final["status"] != "succeeded":
        if final["error"]:
            err.print(f"[red]{escape(final['error'].get('step_id') or 'run')}: {escape(final['error']['message'])}[/]", highlight=False)
        raise typer.Exit(EXIT_FAILED)


def approve(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    step: Annotated[str, typer.Argument(help="The approval step waiting for an answer.")],
    field: Annotated[list[str], typer.Option("--field", help="A declared field as name=value (repeatable).")] = [],  # noqa: B006
    url: Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Approve a waiting approval step of a run on a server, with its fields."""
    from .answers import parse_fields
    from .client import ApiClient

    with guard():
        client = ApiClient.from_settings(Settings.from_env(), url)
        run = client.request("GET", f"/v1/runs/{run_id}")
        waiting = next((s.get("waiting") for s in run["steps"] if s["id"] == step), None) or {}
        fields = parse_fields(field, list(waiting.get("fields") or []))
        done = client.request("POST", f"/v1/runs/{run_id}/steps/{step}/approve", json={"fields": fields})
        err.print(f"approved {escape(step)}: run {done['id']} is {done['status']}", highlight=False)


def reject(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    step: Annotated[str, typer.Argument(help="The approval step waiting for an answer.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in the step's error).")] = "",
    url: Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Reject a waiting approval step of a run on a server."""
    from .client import ApiClient

    with guard():
        client = ApiClient.from_settings(Settings.from_env(), url)
        done = client.request("POST", f"/v1/runs/{run_id}/steps/{step}/reject", json={"reason": reason})
        err.print(f"rejected {escape(step)}: run {done['id']} is {done['status']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the service commands to the main CLI."""
    from .deliveries import deliveries
    from .rerun import rerun

    for command in (serve, token, submit, watch, rerun, approve, reject, deliveries):
        app.command()(command)
