"""The Markdown exporter keeps a report's structure whatever the run holds: fences that
an answer's backticks cannot close, table cells that a pipe cannot split."""

from __future__ import annotations

from typing import Any

from orchestrate.export import export_run, file_name


def _run(**changes: Any) -> dict[str, Any]:
    step = {"id": "draft", "status": "succeeded", "attempt": 1, "prompt": "Write code", "output": "Done", "outputs": None,
            "error": None, "model": "gpt-4o", "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, "latency_ms": 1500}  # fmt: skip
    run = {"id": "6d91ba67-46b1-4961-bb31-74b5d70e2e3c", "workflow": "Émile's | report", "status": "succeeded", "mode": "auto",
           "inputs": {"topic": "a\nb"}, "outputs": None, "error": None, "usage": {"total_tokens": 7}, "steps": [step]}  # fmt: skip
    run.update(changes)
    return run


def test_a_prompt_with_a_fence_inside_stays_inside_its_block() -> None:
    prompt = "Fix this:\n```python\nprint(1)\n```\nthanks"
    run = _run()
    run["steps"][0]["prompt"] = prompt
    text = export_run(run, "md")
    assert "````text\n" + prompt + "\n````" in text
    assert text.index("**Answer**") > text.index("thanks")


def test_table_cells_and_headings_stay_one_line() -> None:
    text = export_run(_run(status="failed", error={"type": "step-failed", "message": "boom\nagain", "step_id": "draft"}), "md")
    assert text.startswith("# Émile's | report: run 6d91ba67-46b1-4961-bb31-74b5d70e2e3c\n")
    assert "| Status | failed |" in text and "**step-failed** (step `draft`): boom again" in text
    assert "```text\na\nb\n```" in text  # a multi-line input as a block
    assert "latency 1.50 s" in text and "7 tokens (3 prompt, 4 completion)" in text


def test_file_names_are_plain_ascii() -> None:
    assert file_name(_run(), "md") == "emile-s-report-6d91ba67.md"
    assert file_name(_run(workflow=None), "json") == "run-6d91ba67.json"
