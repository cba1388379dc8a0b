"""`workflow` steps on both stores: a child run per step, linked both ways; the parent
step ends with the child (its outputs, its error, its cancellation); cancelling the
parent cancels the child; the depth limit stops a cycle; a duplicate execution of the
step finds the child it started instead of starting another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrate.engine.core import Engine
from orchestrate.engine.decide import Action
from orchestrate.engine.library import FileLibrary, WorkflowLibrary
from orchestrate.engine.local import run_local
from orchestrate.engine.queue import InProcessQueue, consume
from orchestrate.engine.records import RunState, RunStatus, StepMessage, StepStatus
from orchestrate.errors import ProviderRejected
from orchestrate.llm import ChatRequest
from orchestrate.spec import dump_spec, parse_workflow, resolve_inputs
from tests.engine.conftest import Env
from tests.fakes.providers import RecordingProvider

CHILD = """
name: summarize
inputs: {topic: {type: string}, points: {type: array, default: []}}
steps:
  - {id: summary, prompt: "Summarize {{ inputs.topic }} in {{ inputs.points | length }} points"}
"""

PARENT = """
name: report
inputs: {topic: {default: tea}}
steps:
  - {id: research, prompt: "About {{ inputs.topic }}", outputs: [{name: points, type: array}]}
  - id: sub
    workflow: {name: summarize, inputs: {topic: "{{ inputs.topic | upper }}", points: "{{ steps.research.outputs.points }}"}}
  - {id: final, prompt: "Final: {{ steps.sub.outputs.summary }}"}
"""


@dataclass
class Family:
    env: Env
    library: WorkflowLibrary
    folder: Path

    async def save(self, text: str, owner: str | None = None) -> str | None:
        """Save a workflow for ``owner`` (default: the env's); its id on Postgres."""
        plan = parse_workflow(text)
        (self.folder / f"{plan.workflow.name}.yaml").write_text(text)
        if self.env.owner is None:
            return None
        from orchestrate.db.workflows import Workflows

        assert isinstance(self.library, Workflows)
        record = await self.library.create(owner or self.env.owner, name=plan.workflow.name, description="", source=text, spec=dump_spec(plan))
        return record.id

    async def run(self, text: str, provider: RecordingProvider | None = None, max_depth: int = 5) -> RunState:
        plan = parse_workflow(text)
        return await run_local(
            plan, resolve_inputs(plan.workflow, {}), provider or RecordingProvider(), store=self.env.store, owner_id=self.env.owner, library=self.library, max_workflow_depth=max_depth
        )

    async def child(self, parent: RunState, step_id: str) -> RunState:
        child_id = parent.steps[step_id].child_run_id
        assert child_id is not None
        child = await self.env.store.get_run(child_id)
        assert child is not None
        return child


@pytest.fixture
async def family(env: Env, tmp_path: Path) -> AsyncIterator[Family]:
    if env.owner is None:
        yield Family(env, FileLibrary([tmp_path]), tmp_path)
        return
    from orchestrate.db.store import PostgresStore
    from orchestrate.db.workflows import Workflows

    assert isinstance(env.store, PostgresStore)
    yield Family(env, Workflows(env.store), tmp_path)


async def test_a_child_run_succeeds_and_its_outputs_flow_on(family: Family) -> None:
    await family.save(CHILD)
    parent = await family.run(PARENT)
    assert parent.status is RunStatus.SUCCEEDED, parent.error
    sub = parent.steps["sub"]
    child = await family.child(parent, "sub")
    assert (child.parent_run_id, child.parent_step_id) == (parent.id, "sub")
    assert child.status is RunStatus.SUCCEEDED and child.inputs["topic"] == "TEA"
    assert child.inputs["points"] == parent.steps["research"].outputs["points"]  # type: ignore[index]  # a value, not its text
    assert sub.status is StepStatus.SUCCEEDED and sub.outputs == child.outputs and sub.usage == child.usage
    assert parent.steps["final"].prompt == f"Final: {child.outputs['summary']}"  # type: ignore[index]
    assert sub.to_dict()["child_run_id"] == child.id and child.to_dict()["parent"] == {"run_id": parent.id, "step_id": "sub"}
    events = [(e.type, e.data.get("kind")) for e in await family.env.store.events(parent.id) if e.step_id == "sub"]
    assert ("step.waiting", "workflow") in events and events[-1][0] == "step.succeeded"


async def test_a_failed_child_fails_the_step_naming_the_child(family: Family) -> None:
    await family.save(CHILD)

    def refuse(request: ChatRequest, count: int) -> None:
        if request.messages[-1]["content"].startswith("Summarize"):
            raise ProviderRejected("the model refused")

    parent = await family.run(PARENT, RecordingProvider(fail=refuse))
    child = await family.child(parent, "sub")
    assert child.status is RunStatus.FAILED
    error = parent.steps["sub"].error
    assert parent.status is RunStatus.FAILED and error is not None and error.type == "child-run-failed"
    assert child.id in error.message and "the model refused" in error.message and "summary" in error.message


async def test_child_inputs_are_checked_against_the_child_workflow(family: Family) -> None:
    await family.save(CHILD)
    parent = await family.run(PARENT.replace("points:", "pionts:"))
    error = parent.steps["sub"].error
    assert error is not None and error.type == "child-inputs-invalid" and "pionts" in error.message
    assert parent.steps["sub"].child_run_id is None  # nothing was started


async def test_an_unknown_workflow_fails_the_step(family: Family) -> None:
    parent = await family.run(PARENT)
    error = parent.steps["sub"].error
    assert parent.status is RunStatus.FAILED and error is not None and error.type == "workflow-not-found"


class Blocking(RecordingProvider):
    """Holds every call whose prompt starts with "Slow" until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def complete(self, request: ChatRequest):  # type: ignore[no-untyped-def]
        if request.messages[-1]["content"].startswith("Slow"):
            self.entered.set()
            await self.release.wait()
        return await super().complete(request)


SLOW_CHILD = "name: slow\nsteps:\n  - {id: wait, prompt: Slow work}\n  - {id: after, prompt: 'then {{ wait }}'}\n"
CALLS_SLOW = "name: boss\nsteps:\n  - {id: sub, workflow: {name: slow}}\n  - {id: next, prompt: 'x {{ sub }}'}\n"


async def started(family: Family, text: str, provider: RecordingProvider) -> tuple[Engine, RunState, asyncio.Task[None]]:
    queue = InProcessQueue()
    engine = Engine(family.env.store, queue, provider, library=family.library)
    worker = asyncio.create_task(consume(queue, engine.process))
    run = await engine.start(parse_workflow(text), {}, owner_id=family.env.owner)
    return engine, run, worker


async def until(family: Family, run_id: str, done: object, timeout: float = 10.0) -> RunState:
    for _ in range(int(timeout / 0.02)):
        run = await family.env.store.get_run(run_id)
        assert run is not None
        if done(run):  # type: ignore[operator]
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} did not get there: {run.status} {[(s, x.status.value) for s, x in run.steps.items()]}")


async def test_cancelling_the_parent_cancels_the_child_and_a_cancelled_child_fails_the_step(family: Family) -> None:
    await family.save(SLOW_CHILD)
    provider = Blocking()
    engine, parent, worker = await started(family, CALLS_SLOW, provider)
    try:
        await asyncio.wait_for(provider.entered.wait(), 10)
        waiting = await until(family, parent.id, lambda r: r.steps["sub"].status is StepStatus.WAITING)
        child_id = waiting.steps["sub"].child_run_id
        assert child_id is not None
        await engine.control(parent.id, Action.CANCEL)
        child = await until(family, child_id, lambda r: r.status.finished)
        assert child.status is RunStatus.CANCELLED and child.steps["wait"].status is StepStatus.CANCELLED

        # and the other way round: the child cancelled on its own fails its parent's step
        provider.entered.clear()
        second = await engine.start(parse_workflow(CALLS_SLOW), {}, owner_id=family.env.owner)
        await asyncio.wait_for(provider.entered.wait(), 10)
        waiting = await until(family, second.id, lambda r: r.steps["sub"].status is StepStatus.WAITING)
        await engine.control(str(waiting.steps["sub"].child_run_id), Action.CANCEL)
        failed = await until(family, second.id, lambda r: r.status.finished)
        error = failed.steps["sub"].error
        assert failed.status is RunStatus.FAILED and error is not None and error.type == "child-run-failed" and "was cancelled" in error.message
    finally:
        provider.release.set()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_the_depth_limit_stops_a_cycle_of_workflows(family: Family) -> None:
    await family.save("name: ping\nsteps:\n  - {id: call, workflow: {name: pong}}\n")
    await family.save("name: pong\nsteps:\n  - {id: call, workflow: {name: ping}}\n")
    root = await family.run("name: ping\nsteps:\n  - {id: call, workflow: {name: pong}}\n", max_depth=3)
    assert root.status is RunStatus.FAILED
    runs, run = [root], root
    while run.steps["call"].child_run_id is not None:
        run = await family.child(run, "call")
        runs.append(run)
    assert len(runs) == 4  # depths 0..3: the run at depth 3 may not start a fourth level
    deepest = runs[-1].steps["call"].error
    assert deepest is not None and deepest.type == "workflow-depth-exceeded"
    assert "ping -> pong -> ping -> pong -> ping" in deepest.message and "limit of 3" in deepest.message
    top = root.steps["call"].error
    assert top is not None and top.type == "child-run-failed" and "workflow-depth-exceeded" in top.message
    assert all(r.status is RunStatus.FAILED for r in runs)


async def test_a_step_executed_again_finds_the_child_it_started(family: Family) -> None:
    """A crash after the child started and before the step parked: the step's lease
    lapses, its claim runs again, and the same child is adopted (one child, one run)."""
    await family.save(SLOW_CHILD)
    provider = Blocking()
    queue = InProcessQueue()
    engine = Engine(family.env.store, queue, provider, library=family.library)
    parent = await engine.start(parse_workflow(CALLS_SLOW), {}, owner_id=family.env.owner)
    claim = await family.env.store.claim(parent.id, "sub", 0.05)
    from orchestrate.engine.kinds import workflow as kind
    from orchestrate.engine.store import Claim, Park

    assert isinstance(claim, Claim)
    first = await kind.execute(engine, engine.plan_for(claim.run), claim)  # ... and the process dies here
    assert isinstance(first, Park)
    await asyncio.sleep(0.1)  # the lease lapses
    worker = asyncio.create_task(consume(queue, engine.process))
    try:
        await queue.send([StepMessage(parent.id, "sub"), StepMessage(parent.id, "sub")])  # the sweeper's, and a duplicate
        waiting = await until(family, parent.id, lambda r: r.steps["sub"].status is StepStatus.WAITING)
        assert waiting.steps["sub"].attempt == 2 and waiting.steps["sub"].child_run_id == first.info["run_id"]
        provider.release.set()
        done = await until(family, parent.id, lambda r: r.status.finished)
        assert done.status is RunStatus.SUCCEEDED
        family_of = await family.env.store.family(parent.id)
        assert family_of is not None and family_of.active_children == []
        if family.env.owner is not None:
            from orchestrate.db.store import PostgresStore

            assert isinstance(family.env.store, PostgresStore)
            children = await family.env.store.list_runs(family.env.owner, parent_run_id=parent.id)
            assert [c.id for c in children] == [first.info["run_id"]]
        assert sum(1 for r in provider.prompts() if r == "Slow work") == 1
    finally:
        provider.release.set()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_another_users_workflow_is_not_found(family: Family, request: pytest.FixtureRequest) -> None:
    if family.env.owner is None:
        pytest.skip("ids of saved workflows: Postgres")
    stranger = request.getfixturevalue("make_user")()
    their_id = await family.save(CHILD, owner=stranger)
    parent = await family.run(f"name: p\nsteps:\n  - {{id: sub, workflow: {{id: '{their_id}', inputs: {{topic: x}}}}}}\n")
    error = parent.steps["sub"].error
    assert error is not None and error.type == "workflow-not-found" and parent.steps["sub"].child_run_id is None
    mine = await family.save(CHILD)
    ok = await family.run(f"name: p\nsteps:\n  - {{id: sub, workflow: {{id: '{mine}', version: 1, inputs: {{topic: x}}}}}}\n")
    assert ok.status is RunStatus.SUCCEEDED
    wrong = await family.run(f"name: p\nsteps:\n  - {{id: sub, workflow: {{id: '{mine}', version: 2, inputs: {{topic: x}}}}}}\n")
    assert wrong.steps["sub"].error is not None and wrong.steps["sub"].error.type == "workflow-version-mismatch"
