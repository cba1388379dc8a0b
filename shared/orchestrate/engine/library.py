"""Where a `workflow` step finds the workflow it runs as a child: the owner's saved
workflows (``orchestrate.db.workflows.Workflows`` on Postgres), or, for ``orchestrate
run``, the workflow files of a few folders (``FileLibrary``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import SpecError


@dataclass(frozen=True)
class SavedWorkflow:
    id: str | None  # None for a workflow file
    name: str
    version: int | None  # None for a workflow file: it has no saved versions
    spec: Any  # the stored spec, checked when the child starts


class WorkflowLibrary(Protocol):
    async def find(self, owner_id: str | None, *, id: str | None = None, name: str | None = None) -> SavedWorkflow | None:
        """The owner's workflow with this id, or the newest with this name; None if the
        owner has none (another user's workflow is never found)."""
        ...


class FileLibrary:
    """Workflow files (``*.yaml``, ``*.yml``) in ``folders``: ``name`` matches a file's
    workflow `name` or its file name without the extension. Files are read when asked,
    so an edit is seen by the next child run."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = list(dict.fromkeys(Path(f) for f in folders))

    async def find(self, owner_id: str | None, *, id: str | None = None, name: str | None = None) -> SavedWorkflow | None:
        from ..spec import dump_spec, load_workflow

        if name is None:
            return None  # ids name saved workflows of a service
        for folder in self.folders:
            files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
            stems = [f for f in files if f.stem == name]
            for path in stems + [f for f in files if f not in stems]:
                try:
                    plan = load_workflow(path)
                except (SpecError, OSError):
                    if path in stems:
                        raise
                    continue  # another file that is not a valid workflow: not this one
                if path in stems or plan.workflow.name == name:
                    return SavedWorkflow(None, plan.workflow.name, None, dump_spec(plan))
        return None
