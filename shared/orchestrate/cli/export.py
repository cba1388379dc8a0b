"""``orchestrate export RUN_ID``: a run of a running service as a JSON or Markdown file,
made by the same exporter as the API's ``GET /v1/runs/{id}/export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..settings import Settings
from .app import _die, err, guard


def export(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    format: Annotated[str, typer.Option("--format", "-f", help="md (a report to read) or json (the run as the API shows it).")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")] = None,
    url: Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Export a run as Markdown (inputs, each step's prompt and answer) or JSON."""
    from ..export import export_run
    from .client import ApiClient

    if format not in ("md", "json"):
        _die(f"--format {format!r} is not one of: md, json")
    with guard():
        client = ApiClient.from_settings(Settings.from_env(), url)
        text = export_run(client.request("GET", f"/v1/runs/{run_id}"), "md" if format == "md" else "json")
    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _die(f"cannot write {output}: {exc.strerror}")
    err.print(f"run {escape(run_id)} exported to {escape(str(output))}", highlight=False)
