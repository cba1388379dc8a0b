"""The `orchestrate` command as a user runs it: a subprocess, exit codes, files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrate.spec import load_workflow
from tests.corpus import PROTOTYPE, file_id, sample_inputs, workflow_files
from tests.fakes.api_server import ApiServer, json_reply

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def orchestrate(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ORCHESTRATE_"))}
    base.update({"ORCHESTRATE_MOCK_DELAY": "0", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "orchestrate", *args], capture_output=True, text=True, env=base, cwd=cwd or ROOT, stdin=subprocess.DEVNULL, timeout=60
    )


def test_examples_are_present() -> None:
    assert {p.name for p in EXAMPLES} >= {"marketing.yaml", "debate.yaml", "dnd_adventure.yaml", "launch_kit.yaml", "support_triage.yaml"}


# What the local API answers an example's http steps (the file's `api_url` input names it).
API_ANSWERS = {"repo_report.yaml": {"full_name": "python/cpython", "description": "The Python language", "stargazers_count": 65000}}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_runs_with_the_mock(path: Path, tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    plan = load_workflow(path)
    extra: list[str] = [f"--secret={name}=test-{name.lower()}" for name in plan.secrets]
    server = None
    if "api_url" in plan.workflow.inputs:  # an example with http steps: served on loopback, offline
        server = ApiServer()
        server.default = json_reply(API_ANSWERS[path.name])
        extra += ["--input", f"api_url={server.url}"]
    try:
        proc = orchestrate("run", str(path), "--mock", "--output", str(result_file), *extra, env={"ORCHESTRATE_WEBHOOK_ALLOW_PRIVATE": "1"})
    finally:
        if server is not None:
            server.stop()
    assert proc.returncode == 0, proc.stderr
    if server is not None:
        assert server.requests and all(r.headers.get("authorization", "").startswith("Bearer test-") for r in server.requests)
    result = json.loads(result_file.read_text())
    assert result["status"] == "succeeded"
    assert "succeeded in" in proc.stderr
    assert all(s["status"] in ("succeeded", "skipped") for s in result["steps"])


def run_unchanged(path: Path) -> None:
    """A file in a prototype format runs as it is, every step answering."""
    proc = orchestrate("run", str(path), "--mock", "--json", *sample_inputs(load_workflow(path)))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "succeeded"
    assert len(result["steps"]) == len(load_workflow(path).steps)
    assert all(s["status"] == "succeeded" and s["output"] for s in result["steps"])


@pytest.mark.parametrize("path", workflow_files(PROTOTYPE), ids=file_id)
def test_every_prototype_format_file_runs_unchanged(path: Path) -> None:
    run_unchanged(path)


def test_v02_user_input_reaches_every_step_that_reads_it() -> None:
    proc = orchestrate("run", str(PROTOTYPE / "v0.2" / "recipe_card.yaml"), "--mock", "--json", "--input", "ingredients=eggs, leeks", "--input", "diet=vegan")
    assert proc.returncode == 0, proc.stderr
    prompts = {s["id"]: s["prompt"] for s in json.loads(proc.stdout)["steps"]}
    assert "eggs, leeks" in prompts["plan_dish"] and "vegan" in prompts["plan_dish"] and "(vegan)" in prompts["write_card"]


def test_missing_inputs_exit_2_naming_the_input() -> None:
    proc = orchestrate("run", str(PROTOTYPE / "v0.2" / "haiku.yaml"), "--mock")
    assert proc.returncode == 2
    assert "input 'subject': required but not given" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_inputs_file_and_wrong_types(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: t\ninputs: {n: {type: integer}}\nsteps:\n  - {id: a, prompt: 'n={{ inputs.n }}'}\n")
    good = tmp_path / "in.json"
    good.write_text('{"n": 4}')
    proc = orchestrate("run", str(wf), "--mock", "--inputs", str(good), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["steps"][0]["prompt"] == "n=4"
    bad = tmp_path / "bad.json"
    bad.write_text('{"n": "four"}')
    proc = orchestrate("run", str(wf), "--mock", "--inputs", str(bad))
    assert proc.returncode == 2 and "input 'n': expected integer, got a string 'four'" in proc.stderr
    bad.write_text("{nope")
    proc = orchestrate("run", str(wf), "--mock", "--inputs", str(bad))
    assert proc.returncode == 2 and "invalid JSON" in proc.stderr


def test_invalid_file_exits_2_with_located_problems(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: t\nsteps:\n  - id: a\n    promt: hi\n")
    for command in (["validate", str(wf)], ["run", str(wf), "--mock"]):
        proc = orchestrate(*command)
        assert proc.returncode == 2
        assert f"{wf}:4:5: steps[0].promt: unknown field 'promt'; did you mean 'prompt'?" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_no_key_and_no_mock_is_a_clear_error(tmp_path: Path) -> None:
    proc = orchestrate("run", str(ROOT / "examples" / "marketing.yaml"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "set OPENAI_API_KEY" in proc.stderr and "--mock" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_mock_from_environment_and_failed_run_exit_code(tmp_path: Path) -> None:
    proc = orchestrate("run", str(ROOT / "examples" / "debate.yaml"), "--json", env={"ORCHESTRATE_USE_MOCK": "1"})
    assert proc.returncode == 0, proc.stderr
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: t\nsteps:\n  - {id: a, prompt: \"{{ 'x' * 2000000 }}\"}\n")
    proc = orchestrate("run", str(wf), "--mock")
    assert proc.returncode == 1
    assert "failed" in proc.stderr and "larger than 1 MiB" in proc.stderr


def test_schema_command_prints_json_schema() -> None:
    proc = orchestrate("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["title"] == "Orchestrate workflow"


def test_a_local_run_reads_secrets_from_the_environment_or_the_command_line(tmp_path: Path) -> None:
    server = ApiServer()
    wf = tmp_path / "wf.yaml"
    wf.write_text(f"name: t\nsteps:\n  - {{id: a, http: {{url: '{server.url}/x', headers: {{X-Key: '{{{{ secrets.KEY }}}}'}}}}}}\n")
    allow = {"ORCHESTRATE_WEBHOOK_ALLOW_PRIVATE": "1"}
    try:
        missing = orchestrate("run", str(wf), "--mock", env=allow)
        assert missing.returncode == 2 and "secret KEY not found" in missing.stderr and server.requests == []
        bad = orchestrate("run", str(wf), "--mock", "--secret", "key=hunter2", env=allow)
        assert bad.returncode == 2 and "--secret key: secret name 'key' is not valid" in bad.stderr and "hunter2" not in bad.stderr
        from_env = orchestrate("run", str(wf), "--mock", "--json", env={**allow, "ORCHESTRATE_SECRET_KEY": "from-env"})
        given = orchestrate("run", str(wf), "--mock", "--json", "--secret", "KEY=from-flag", env={**allow, "ORCHESTRATE_SECRET_KEY": "from-env"})
        assert (from_env.returncode, given.returncode) == (0, 0), from_env.stderr + given.stderr
        assert [r.headers["x-key"] for r in server.requests] == ["from-env", "from-flag"]
        assert "from-flag" not in given.stdout and "[secret KEY]" in json.loads(given.stdout)["steps"][0]["prompt"]
        refused = orchestrate("run", str(wf), "--mock", "--secret", "KEY=v")  # loopback, without the setting
        assert refused.returncode == 2 and "HTTP host 127.0.0.1 is not public: a loopback address" in refused.stderr
    finally:
        server.stop()
