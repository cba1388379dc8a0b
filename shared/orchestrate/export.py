"""A run exported as a file: JSON (the run exactly as the API shows it) or Markdown (a
report a person reads: inputs, then each step with its status, model, tokens, latency,
prompt and answer). One exporter for the API (``GET /v1/runs/{id}/export``), and so the
Studio, and for ``orchestrate export``. It reads the run's JSON form only."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Literal

Format = Literal["json", "md"]
MEDIA_TYPES: dict[str, str] = {"json": "application/json", "md": "text/markdown; charset=utf-8"}


def export_run(run: dict[str, Any], format: Format) -> str:
    """The run (as ``GET /v1/runs/{id}`` returns it) in ``format``."""
    if format == "json":
        return json.dumps(run, indent=2, ensure_ascii=False) + "\n"
    return markdown(run)


def file_name(run: dict[str, Any], format: Format) -> str:
    """``launch-kit-6d91ba67.md``: the workflow's name as ASCII, and the run's id."""
    plain = unicodedata.normalize("NFKD", str(run.get("workflow") or "run")).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:60] or "run"
    return f"{slug}-{str(run['id'])[:8]}.{format}"


def markdown(run: dict[str, Any]) -> str:
    usage = run.get("usage") or {}
    lines = [f"# {_inline(run.get('workflow') or 'Workflow')}: run {run['id']}", ""]
    facts = [
        ("Status", run["status"]),
        ("Mode", run.get("mode")),
        ("Created", run.get("created_at")),
        ("Finished", run.get("finished_at")),
        ("Duration", _ms(run.get("duration_ms"))),
        ("Tokens", _tokens(usage)),
    ]
    lines += ["| | |", "| --- | --- |", *(f"| {name} | {_cell(value)} |" for name, value in facts if value is not None), ""]
    if run.get("error"):
        error = run["error"]
        where = f" (step `{error['step_id']}`)" if error.get("step_id") else ""
        lines += ["## Error", "", f"**{_inline(error['type'])}**{where}: {_inline(error['message'])}", ""]
    lines += ["## Inputs", ""]
    inputs = run.get("inputs") or {}
    lines += [f"- **{_inline(name)}**: {_value(value)}" for name, value in inputs.items()] or ["(none)"]
    lines.append("")
    if run.get("outputs"):
        lines += ["## Outputs", "", *_fence(json.dumps(run["outputs"], indent=2, ensure_ascii=False), "json"), ""]
    lines += ["## Steps", ""]
    for number, step in enumerate(run.get("steps") or [], start=1):
        lines += _step(number, step)
    return "\n".join(lines).rstrip() + "\n"


def _step(number: int, step: dict[str, Any]) -> list[str]:
    lines = [f"### {number}. {_inline(step['id'])}: {step['status']}", ""]
    facts = [
        f"model {_inline(step['model'])}" if step.get("model") else None,
        _tokens(step.get("usage") or {}),
        f"latency {_ms(step['latency_ms'])}" if step.get("latency_ms") is not None else None,
        f"attempts {step['attempt']}" if step.get("attempt") else None,
    ]
    if any(facts):
        lines += [" · ".join(f for f in facts if f), ""]
    if step.get("error"):
        lines += [f"**Error** ({_inline(step['error']['type'])}): {_inline(step['error']['message'])}", ""]
    if step.get("prompt"):
        lines += ["**Prompt**", "", *_fence(step["prompt"], "text"), ""]
    if step.get("outputs") is not None:
        lines += ["**Answer** (structured)", "", *_fence(json.dumps(step["outputs"], indent=2, ensure_ascii=False), "json"), ""]
    elif step.get("output") is not None:
        # The answer is Markdown already: kept as the model wrote it, so it reads as it did in the Studio.
        lines += ["**Answer**", "", step["output"].strip() or "(empty)", ""]
    return lines


def _fence(text: str, language: str) -> list[str]:
    """A fenced block that no backtick run inside ``text`` can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text.rstrip("\n"), fence]


def _inline(text: Any) -> str:
    """One line of plain text (no line breaks that would end a table row or heading)."""
    return " ".join(str(text).split())


def _cell(value: Any) -> str:
    return _inline(value).replace("|", "\\|")


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _inline(text) if "\n" not in text else "\n\n" + "\n".join(_fence(text, "text"))


def _ms(ms: Any) -> str | None:
    if ms is None:
        return None
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _tokens(usage: dict[str, Any]) -> str | None:
    total = usage.get("total_tokens")
    if not total:
        return None
    return f"{total} tokens ({usage.get('prompt_tokens', 0)} prompt, {usage.get('completion_tokens', 0)} completion)"
