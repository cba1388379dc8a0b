"""``orchestrate deliveries RUN_ID``: a run's webhook deliveries, every attempt, from the
API (like ``watch``), and ``--redeliver`` to send the final event again."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..settings import Settings
from .app import err, guard, out


def deliveries(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    redeliver: Annotated[bool, typer.Option("--redeliver", help="First send the run's final event again (same webhook-id).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the deliveries as JSON on stdout.")] = False,
    url: Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Show a run's webhook deliveries: each attempt's time, status code, error and the next attempt."""
    from .client import ApiClient

    with guard():
        client = ApiClient.from_settings(Settings.from_env(), url)
        if redeliver:
            created = client.request("POST", f"/v1/runs/{run_id}/webhook-deliveries/redeliver")
            err.print(f"redelivery {created['id']} queued (webhook-id {created['webhook_id']})", highlight=False)
        page = client.request("GET", f"/v1/runs/{run_id}/webhook-deliveries")
    if as_json:
        print(json.dumps(page, indent=2, ensure_ascii=False))
        return
    items: list[dict[str, Any]] = page["items"]
    if not items:
        out.print(f"run {escape(run_id)} has no webhook deliveries", highlight=False)
        return
    for delivery in reversed(items):  # oldest first, like the attempts
        out.print(_describe(delivery), highlight=False)
        for n, attempt in enumerate(delivery["attempts"], 1):
            code = attempt["status_code"] if attempt["status_code"] is not None else "-"
            result = escape(attempt["error"] or "ok")
            later = f" · next attempt {_when(attempt['next_attempt_at'])}" if attempt["next_attempt_at"] else ""
            out.print(f"  #{n}  {_when(attempt['at'])}  {code}  {result}{later}", highlight=False)
        if not delivery["attempts"]:
            out.print("  attempt in progress" if delivery["status"] == "delivering" else "  not attempted yet", highlight=False)


def _describe(delivery: dict[str, Any]) -> str:
    status = delivery["status"] + (" (redelivery)" if delivery["redelivery"] else "")
    colour = {"succeeded": "green", "failed": "red"}.get(delivery["status"], "yellow")
    later = f" · next attempt {_when(delivery['next_attempt_at'])}" if delivery["next_attempt_at"] else ""
    return (
        f"[bold]{delivery['event_type']}[/] [{colour}]{status}[/]{later}\n"
        f"  webhook-id {delivery['webhook_id']} → {escape(delivery['url'])}"
    )


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"
