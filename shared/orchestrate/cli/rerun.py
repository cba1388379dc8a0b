"""``orchestrate rerun RUN_ID --from STEP`` on a running service, and what ``orchestrate
run FILE --rerun result.json --from STEP`` shares with it: edited answers given as
``--output-of STEP=VALUE`` (or ``STEP=@file``) and a result file read back as a run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import jsondata
from ..engine.records import ErrorInfo, RunState, RunStatus, StepState, StepStatus, Usage
from ..errors import InputError
from ..settings import Settings
from ..spec.model import ValueType
from .app import err, guard

_KINDS: dict[type, ValueType] = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}


def parse_outputs(pairs: list[str]) -> dict[str, Any]:
    """``STEP=VALUE`` or ``STEP=@file``: a value that is a JSON object or list (a step
    with `outputs`, a for_each step) is sent as JSON, anything else as text."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for pair in pairs:
        step, sep, raw = pair.partition("=")
        if not sep or not step.strip():
            problems.append(f"--output-of {pair!r}: expected STEP=VALUE or STEP=@file")
            continue
        if raw.startswith("@"):
            try:
                raw = Path(raw[1:]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"--output-of {step}: cannot read {raw[1:]}: {getattr(exc, 'strerror', None) or exc}")
                continue
        value: Any = raw
        if raw.lstrip()[:1] in ("{", "["):
            try:
                value = jsondata.loads(raw)
            except (json.JSONDecodeError, jsondata.DataError) as exc:
                problems.append(f"--output-of {step}: not valid JSON: {exc}")
                continue
        values[step.strip()] = value
    if problems:
        raise InputError(problems)
    return values


def parse_inputs(source_inputs: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """``name=value`` for a run whose spec this client does not hold: each value is read
    as the type of the source run's value (text when it had none)."""
    from ..spec.inputs import parse_pairs_as

    return parse_pairs_as(pairs, lambda name: _KINDS.get(type(source_inputs.get(name)), "string"))


def read_result(path: Path) -> RunState:
    """A run from the JSON ``orchestrate run --output`` (or ``--json``) wrote."""
    try:
        data = jsondata.loads(path.read_text(encoding="utf-8"))
        steps = {
            s["id"]: StepState(
                s["id"],
                position,
                StepStatus(s["status"]),
                prompt=s.get("prompt"),
                output=s.get("output"),
                outputs=s.get("outputs"),
                model=s.get("model"),
                error=ErrorInfo.from_dict(s.get("error")),
                usage=Usage.from_dict(s.get("usage")),
            )
            for position, s in enumerate(data["steps"])
            if not s.get("item")  # a for_each item: its step holds the list
        }
        return RunState(
            id=str(data["id"]),
            spec={},
            inputs=dict(data["inputs"]),
            status=RunStatus(data["status"]),
            steps=steps,
            created_at=dt.datetime.now(dt.UTC),
        )
    except FileNotFoundError:
        raise InputError([f"--rerun {path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([f"--rerun {path}: cannot read: {exc}"]) from None
    except (json.JSONDecodeError, jsondata.DataError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError([f"--rerun {path}: not a result written by `orchestrate run --output` ({type(exc).__name__}: {exc})"]) from None


def rerun(
    run_id: Annotated[str, typer.Argument(help="The finished run to rerun.")],
    from_step: Annotated[str, typer.Option("--from", help="The step to rerun from: it and what depends on it run again.")],
    input: Annotated[list[str], typer.Option("--input", "-i", help="Change an input: name=value (repeatable).")] = [],  # noqa: B006
    output_of: Annotated[list[str], typer.Option("--output-of", help="Edit an earlier step's answer: STEP=VALUE or STEP=@file (repeatable).")] = [],  # noqa: B006
    webhook_url: Annotated[str | None, typer.Option("--webhook-url", help="Notify this URL when the run ends.")] = None,
    watch_run: Annotated[bool, typer.Option("--watch/--no-watch", help="Follow the new run until it ends.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the finished run as JSON on stdout.")] = False,
    url: Annotated[str | None, typer.Option(help="API URL (default: ORCHESTRATE_API_URL or the local server).")] = None,
) -> None:
    """Rerun a finished run on a running service from a step, reusing the answers before it."""
    from .client import ApiClient
    from rich.markup import escape

    from .service import follow

    with guard():
        outputs = parse_outputs(output_of)
        client = ApiClient.from_settings(Settings.from_env(), url)
        source = client.request("GET", f"/v1/runs/{run_id}")
        body: dict[str, Any] = {"from": from_step, "inputs": parse_inputs(source["inputs"], input), "outputs": outputs}
        if webhook_url:
            body["webhook_url"] = webhook_url
        run = client.request("POST", f"/v1/runs/{run_id}/rerun", json=body)
        reused = [s["id"] for s in run["steps"] if s.get("reused")]
        err.print(f"run [bold]{run['id']}[/] queued: rerun of {run['rerun_of']['run_id']} from {escape(from_step)}; reused {escape(', '.join(reused)) or 'nothing'}", highlight=False)
        if not watch_run:
            print(run["id"])
            return
        follow(client, run, as_json)
