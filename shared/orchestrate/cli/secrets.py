"""``orchestrate secrets set|list|delete``: your named secrets on a running service (the
API, like ``submit``). A value is read from stdin or a hidden prompt, never echoed."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from ..settings import Settings
from .app import err, guard, out

secrets_app = typer.Typer(help="Your named secrets for http steps ({{ secrets.NAME }}) on the service.", no_args_is_help=True)

Url = Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")]


@secrets_app.command("set")
def set_secret(
    name: Annotated[str, typer.Argument(help="The secret's name, e.g. GITHUB_TOKEN.")],
    value: Annotated[str | None, typer.Option(help="The value (else read from stdin, or asked for without echo).")] = None,
    url: Url = None,
) -> None:
    """Create or replace a secret."""
    from ..errors import InputError
    from ..vault import name_problem
    from .client import ApiClient

    with guard():
        problem = name_problem(name)
        if problem:
            raise InputError([problem])
        if value is None:
            if sys.stdin.isatty():
                from rich.prompt import Prompt

                value = Prompt.ask(f"value of {name}", password=True, console=err)
            else:
                value = sys.stdin.read().rstrip("\r\n")
        client = ApiClient.from_settings(Settings.from_env(), url)
        client.request("PUT", f"/v1/secrets/{name}", json={"value": value})
    err.print(f"secret {escape(name)} set; use it as {{{{ secrets.{escape(name)} }}}} in an http step's url or headers", highlight=False)


@secrets_app.command("list")
def list_secrets(url: Url = None) -> None:
    """Your secrets' names and when they were set (never their values)."""
    from .client import ApiClient

    with guard():
        items = ApiClient.from_settings(Settings.from_env(), url).request("GET", "/v1/secrets")["items"]
    if not items:
        err.print("no secrets yet: orchestrate secrets set NAME", highlight=False)
    for item in items:
        out.print(f"{escape(item['name'])}  updated {item['updated_at'].replace('T', ' ')[:19]}", highlight=False)


@secrets_app.command("delete")
def delete_secret(name: Annotated[str, typer.Argument(help="The secret's name.")], url: Url = None) -> None:
    """Delete a secret."""
    from .client import ApiClient

    with guard():
        ApiClient.from_settings(Settings.from_env(), url).request("DELETE", f"/v1/secrets/{name}")
    err.print(f"secret {escape(name)} deleted", highlight=False)
