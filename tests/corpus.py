"""Where the workflow files in the prototype's formats live, for the tests.

The repository's own files (tests/fixtures/prototype) are always there. The prototype's
real files sit in the team folder beside the repository (CI has it, a fresh clone does
not); tests over them skip with a reason when it is absent. Parametrizing over an empty
folder fails at collection (``empty_parameter_set_mark`` in pyproject.toml), so a missing
file set can never pass as zero tests."""

from __future__ import annotations

from pathlib import Path

from orchestrate.spec import Plan

ROOT = Path(__file__).resolve().parents[1]
PROTOTYPE = ROOT / "tests" / "fixtures" / "prototype"
SHARED_COMPAT = ROOT.parent / "shared" / "compat" / "orchestrate-v0"


def workflow_files(folder: Path) -> list[Path]:
    """The workflows under ``folder/<format>/``, in a stable order."""
    return sorted(folder.glob("*/*.yaml"))


def file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def sample_inputs(plan: Plan) -> list[str]:
    """``--input name=value`` arguments for every input the workflow requires."""
    return [arg for name, spec in plan.workflow.inputs.items() if spec.required for arg in ("--input", f"{name}=sample {name}")]
