"""The Postgres store as the API uses it: per-user, RLS-enforced, round-tripping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from orchestrate.db.store import PostgresStore
from orchestrate.db.workflows import Workflows
from orchestrate.engine.core import Engine
from orchestrate.engine.queue import InProcessQueue
from orchestrate.engine.records import RunStatus, StepMessage
from orchestrate.llm import MockProvider
from orchestrate.spec import dump_spec, parse_workflow

SOURCE = "name: pair\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: '{{ a }}'}\n"


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_url)
    yield store
    await store.close()


async def make_workflow(workflows: Workflows, user: str, name: str = "pair") -> str:
    plan = parse_workflow(SOURCE)
    record = await workflows.create(user, name=name, description="d", source=SOURCE, spec=dump_spec(plan))
    return record.id


async def test_workflows_round_trip_and_paginate(store: PostgresStore, make_user: Callable[..., str]) -> None:
    user = make_user()
    workflows = Workflows(store)
    ids = [await make_workflow(workflows, user, f"wf{i}") for i in range(5)]
    got = await workflows.get(user, ids[0])
    assert got is not None and got.name == "wf0" and got.source == SOURCE and got.version == 1
    assert got.spec["steps"][1]["prompt"] == "{{ a }}"
    page1 = await workflows.list(user, limit=2)
    page2 = await workflows.list(user, limit=2, after=(page1[-1].created_at, page1[-1].id))
    page3 = await workflows.list(user, limit=2, after=(page2[-1].created_at, page2[-1].id))
    seen = [w.id for w in page1 + page2 + page3]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 5
    updated = await workflows.update(user, ids[0], name="renamed", description="", source=SOURCE, spec=got.spec)
    assert updated is not None and updated.version == 2 and updated.name == "renamed"
    assert await workflows.delete(user, ids[0]) is True
    assert await workflows.get(user, ids[0]) is None


async def test_another_users_ids_are_not_found_and_untouched(store: PostgresStore, make_user: Callable[..., str]) -> None:
    alice, bob = make_user(), make_user()
    workflows = Workflows(store)
    wf = await make_workflow(workflows, alice)
    engine = Engine(store, InProcessQueue(), MockProvider())
    run = await engine.start(parse_workflow(SOURCE), {}, owner_id=alice, workflow_id=wf)
    assert await workflows.get(bob, wf) is None
    assert await workflows.list(bob) == []
    assert await workflows.update(bob, wf, name="x", description="", source=None, spec={}) is None
    assert await workflows.delete(bob, wf) is False
    assert await store.get_run(run.id, user_id=bob) is None
    assert await store.events(run.id, user_id=bob) == []
    assert await store.list_runs(bob) == []
    assert (await workflows.get(alice, wf)).name == "pair"  # type: ignore[union-attr]
    mine = await store.get_run(run.id, user_id=alice)
    assert mine is not None and mine.status is RunStatus.QUEUED and mine.workflow_id == wf


@pytest.mark.parametrize("bad", ["not-a-uuid", "", "00000000-0000-0000-0000-000000000000"])
async def test_unknown_or_malformed_ids_are_not_found(store: PostgresStore, make_user: Callable[..., str], bad: str) -> None:
    user = make_user()
    assert await Workflows(store).get(user, bad) is None
    assert await store.get_run(bad, user_id=user) is None
    assert await store.events(bad, user_id=user) == []
    assert await store.list_runs(user, workflow_id=bad) == []


async def test_a_run_keeps_its_spec_snapshot_when_the_workflow_changes(store: PostgresStore, make_user: Callable[..., str]) -> None:
    user = make_user()
    workflows = Workflows(store)
    wf = await make_workflow(workflows, user)
    engine = Engine(store, InProcessQueue(), MockProvider())
    run = await engine.start(parse_workflow(SOURCE), {}, owner_id=user, workflow_id=wf)
    other = dump_spec(parse_workflow("name: changed\nsteps:\n  - {id: z, prompt: other}\n"))
    await workflows.update(user, wf, name="changed", description="", source=None, spec=other)
    await engine.process(StepMessage(run.id, "a"))
    await engine.process(StepMessage(run.id, "b"))
    final = await store.get_run(run.id, user_id=user)
    assert final is not None and final.status is RunStatus.SUCCEEDED
    assert list(final.steps) == ["a", "b"] and final.spec["name"] == "pair"
    assert final.outputs == {"a": final.steps["a"].output, "b": final.steps["b"].output}
    runs = await store.list_runs(user, workflow_id=wf, status=RunStatus.SUCCEEDED)
    assert [r.id for r in runs] == [run.id]
    assert await store.list_runs(user, status=RunStatus.FAILED) == []
