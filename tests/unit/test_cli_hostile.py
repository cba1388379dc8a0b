"""The hostile documents of tests/hostile_documents.py through the command line:
exit 2 with file:line:col and the field, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_documents import BIG, WORKFLOWS
from tests.unit.test_cli import ROOT, orchestrate

WORKFLOW = "name: t\ninputs:\n  who: {type: string}\n  times: {type: integer, default: 1}\n  extra: {type: object, default: {}}\nsteps:\n  - {id: a, prompt: 'hi {{ inputs.who }}'}\n"


def test_validate_locates_every_hostile_yaml_document(tmp_path: Path) -> None:
    files = []
    for name, source, _ in WORKFLOWS:
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(source, encoding="utf-8")
    proc = orchestrate("validate", *map(str, files))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    invalid = [(f, path) for f, (_, _, path) in zip(files, WORKFLOWS) if path is not None]
    assert f"{len(invalid)} of {len(files)} files invalid" in proc.stderr
    lines = proc.stderr.splitlines()
    for file, path in invalid:
        located = [line for line in lines if line.startswith(f"{file}:")]
        assert located, (file, proc.stderr)
        line, column, rest = located[0].removeprefix(f"{file}:").split(":", 2)
        assert line.isdigit() and column.isdigit(), located[0]
        assert rest.startswith(f" {path}:") if path else not rest.lstrip().startswith("."), located[0]


@pytest.mark.parametrize("name", ["version-of-5000-digits", "binary-not-utf8", "nul-escape-in-key"])
def test_run_refuses_hostile_yaml_with_exit_2(tmp_path: Path, name: str) -> None:
    source = next(s for n, s, _ in WORKFLOWS if n == name)
    wf = tmp_path / "wf.yaml"
    wf.write_text(source, encoding="utf-8")
    proc = orchestrate("run", str(wf), "--mock")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{wf}:" in proc.stderr and "is invalid (1 problem)" in proc.stderr


@pytest.mark.parametrize(
    ("name", "inputs", "message"),
    [
        ("lone-surrogate-value", '{"who": "\\ud800"}', "inputs.json: who: a lone UTF-16 surrogate"),
        ("lone-surrogate-key", '{"who": "x", "extra": {"\\udfff": 1}}', "extra: a key: a lone UTF-16 surrogate"),
        ("nul-in-key", '{"who": "x", "extra": {"a\\u0000": 1}}', "extra: a key: the NUL character"),
        ("nul-in-input-name", '{"who": "x", "w\\u0000": 1}', "inputs.json: a key: the NUL character"),
        ("number-over-float-range", '{"who": "x", "extra": {"n": 1e400}}', "extra.n: the number is not finite"),
        ("nan", '{"who": "x", "extra": {"n": NaN}}', "extra.n: NaN is not a number"),
        ("integer-of-5000-digits", '{"who": "x", "times": ' + BIG + "}", "times: an integer of 5001 digits"),
        ("deep-nesting", '{"who": "x", "extra": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}", "nested too deeply"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.islower() and " " not in v else "",
)
def test_inputs_file_with_hostile_json_exits_2(tmp_path: Path, name: str, inputs: str, message: str) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    given = tmp_path / "inputs.json"
    given.write_text(inputs, encoding="utf-8")
    proc = orchestrate("run", str(wf), "--mock", "--inputs", str(given))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "invalid inputs" in proc.stderr


def test_command_line_inputs_with_hostile_values_exit_2(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    # A byte that is not UTF-8 reaches Python's argv as a lone surrogate.
    args = [sys.executable, "-m", "orchestrate", "run", str(wf), "--mock"]
    args += [os.fsdecode(b"--input=who=\xff"), "--input", "extra={\"n\": 1e400}", "--input", f"times={BIG}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ORCHESTRATE_"))}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "input 'who': a lone UTF-16 surrogate" in proc.stderr
    assert "input 'extra': expected object: n: the number is not finite" in proc.stderr
    assert "input 'times': expected integer: an integer of 5001 digits" in proc.stderr
