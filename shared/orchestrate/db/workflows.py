"""Stored workflows, per user. Every call runs as that user, so RLS decides what
exists: another user's id is simply not found.

A user may also write these rows through the Supabase Data API (RLS allows it), so a
row is data to check, not a promise: the spec is read as text and parsed here, and a
spec that is not a JSON object of storable values is reported in ``spec_problem``
(docs/api.md, "Rows you write yourself")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .. import jsondata
from ..engine.library import SavedWorkflow
from .store import PostgresStore, valid_id

Cursor = tuple[dt.datetime, str]  # (created_at, id) of the last row of the previous page


@dataclass(frozen=True)
class WorkflowRecord:
    id: str
    owner_id: str
    name: str
    description: str
    source: str | None
    spec: Any  # a dict unless spec_problem says otherwise
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    spec_problem: str | None = None  # why the stored spec is not a usable workflow object

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "source": self.source,
            "spec": self.spec,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


_COLUMNS = "id::text, owner_id::text, name, coalesce(description, '') as description, source, spec::text as spec, version, created_at, updated_at"


_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}


def _record(row: dict[str, Any]) -> WorkflowRecord:
    """A row as a record; a spec that cannot be used is kept with the reason, not raised."""
    try:
        spec = jsondata.loads(row["spec"], "spec")
        problem = None if isinstance(spec, dict) else f"spec: must be a JSON object, not {_KINDS.get(type(spec), type(spec).__name__)}"
    except ValueError as exc:  # numbers jsonb holds but JSON data cannot (1e400, 5,000 digits)
        spec, problem = None, str(exc)
    return WorkflowRecord(**{**row, "spec": spec}, spec_problem=problem)


class Workflows:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def create(self, user_id: str, *, name: str, description: str, source: str | None, spec: dict[str, Any]) -> WorkflowRecord:
        async with self.store.transaction(user_id) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"insert into public.workflows (owner_id, name, description, source, spec) values (%s, %s, %s, %s, %s) returning {_COLUMNS}",
                (user_id, name, description, source, Jsonb(spec)),
            )
            row = await cur.fetchone()
        assert row is not None
        return _record(row)

    async def get(self, user_id: str, workflow_id: str) -> WorkflowRecord | None:
        if not valid_id(workflow_id):
            return None
        async with self.store.transaction(user_id) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"select {_COLUMNS} from public.workflows where id = %s", (workflow_id,))
            row = await cur.fetchone()
        return _record(row) if row else None

    async def find(self, owner_id: str | None, *, id: str | None = None, name: str | None = None) -> SavedWorkflow | None:
        """A `workflow` step's child (``engine.library.WorkflowLibrary``): the owner's
        workflow with this id, or the most recently updated one with this name, read as
        the owner (RLS: another user's workflow is not found)."""
        if owner_id is None or (id is not None and not valid_id(id)):
            return None
        where, value = ("id = %s", id) if id is not None else ("name = %s", name)
        async with self.store.transaction(owner_id) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"select {_COLUMNS} from public.workflows where {where} order by updated_at desc, id desc limit 1", (value,))
            row = await cur.fetchone()
        if row is None:
            return None
        record = _record(row)
        return SavedWorkflow(record.id, record.name, record.version, record.spec if record.spec_problem is None else None)

    async def list(self, user_id: str, *, limit: int = 50, after: Cursor | None = None, name_contains: str | None = None) -> list[WorkflowRecord]:
        """Newest first; ``after`` continues from the last row of the previous page;
        ``name_contains`` keeps the names that contain it, ignoring case."""
        query = f"select {_COLUMNS} from public.workflows where true"
        params: list[Any] = []
        if after is not None:
            query += " and (created_at, id) < (%s, %s)"
            params += [after[0], after[1]]
        if name_contains:
            # LIKE's own characters match themselves: searching "50%" finds "50%", not "500".
            pattern = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query += " and name ilike %s"
            params.append(f"%{pattern}%")
        query += " order by created_at desc, id desc limit %s"
        params.append(limit)
        async with self.store.transaction(user_id) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            rows = await cur.fetchall()
        return [_record(row) for row in rows]

    async def update(
        self, user_id: str, workflow_id: str, *, name: str, description: str, source: str | None, spec: dict[str, Any]
    ) -> WorkflowRecord | None:
        """Replace the workflow; its version goes up. Runs in flight keep their snapshot."""
        if not valid_id(workflow_id):
            return None
        async with self.store.transaction(user_id) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"update public.workflows set name = %s, description = %s, source = %s, spec = %s, version = version + 1 "
                f"where id = %s returning {_COLUMNS}",
                (name, description, source, Jsonb(spec), workflow_id),
            )
            row = await cur.fetchone()
        return _record(row) if row else None

    async def delete(self, user_id: str, workflow_id: str) -> bool:
        if not valid_id(workflow_id):
            return False
        async with self.store.transaction(user_id) as conn:
            cur = await conn.execute("delete from public.workflows where id = %s returning id", (workflow_id,))
            return await cur.fetchone() is not None
