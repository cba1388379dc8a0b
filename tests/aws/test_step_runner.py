"""The step runner's Lambda handler with the SQS event AWS delivers, and the local
worker running a workflow end to end through a local SQS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrate.aws.runtime import Runtime
from orchestrate.aws.step_runner import make_handler
from orchestrate.aws.worker import LocalContext, poll_once
from orchestrate.engine.records import RunState, RunStatus
from orchestrate.settings import Settings
from orchestrate.spec import parse_workflow

EVENT = Path(__file__).resolve().parents[1] / "fixtures" / "sqs_event.json"
PAIR = "name: pair\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: '{{ a }}'}\n"


@pytest.fixture
def runtime(pg_url: str, make_queue: Callable[..., str], sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")  # the handler runs as under Lambda
    settings = Settings(database_url=pg_url, step_queue_url=make_queue(), sqs_endpoint_url=sqs_endpoint, use_mock=True, mock_delay=0)
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def start(runtime: Runtime, owner: str, text: str = PAIR) -> RunState:
    engine = runtime.run(runtime.engine())
    return runtime.run(engine.start(parse_workflow(text), {}, owner_id=owner))


def get(runtime: Runtime, run_id: str) -> RunState:
    engine = runtime.run(runtime.engine())
    run = runtime.run(engine.store.get_run(run_id))
    assert run is not None
    return run


def test_handler_takes_the_aws_event_and_reports_only_the_poison_record(runtime: Runtime, make_user: Callable[..., str]) -> None:
    run = start(runtime, make_user())
    event = json.loads(EVENT.read_text().replace("RUN_ID", run.id))
    result = make_handler(runtime)(event, LocalContext(30))
    # Two deliveries of the same step (a duplicate) and one malformed body.
    assert result == {"batchItemFailures": [{"itemIdentifier": "9c5a1a04-0c9b-4a29-9a3e-3b6f2a0c7d11"}]}
    after = get(runtime, run.id)
    assert after.steps["a"].status.value == "succeeded" and after.steps["a"].attempt == 1
    assert after.steps["b"].status.value == "queued"
    events = runtime.run(runtime.run(runtime.engine()).store.events(run.id))
    assert sum(e.type == "step.succeeded" for e in events) == 1


def drive(runtime: Runtime, run_id: str, *, until: Callable[[RunState], bool], limit: float = 30.0) -> RunState:
    """Run the local worker loop until ``until`` holds."""
    handler = make_handler(runtime)
    settings = runtime.settings
    from orchestrate.aws.sqs import sqs_client

    client = sqs_client(settings.aws_region, settings.sqs_endpoint_url)
    deadline = time.monotonic() + limit
    while True:
        run = get(runtime, run_id)
        if until(run):
            return run
        assert time.monotonic() < deadline, f"run stuck: {run.status} {[(s, st.status.value) for s, st in run.steps.items()]}"
        poll_once(client, settings.step_queue_url or "", handler, wait=1)


def test_the_worker_runs_a_workflow_end_to_end_through_sqs(runtime: Runtime, make_user: Callable[..., str]) -> None:
    text = "name: fan\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: 'x {{ a }}'}\n  - {id: c, prompt: 'y {{ a }}'}\n  - {id: d, prompt: '{{ b }} {{ c }}'}\n"
    run = start(runtime, make_user(), text)
    final = drive(runtime, run.id, until=lambda r: r.status.finished)
    assert final.status is RunStatus.SUCCEEDED
    assert all(s.status.value == "succeeded" and s.attempt == 1 for s in final.steps.values())


def test_controls_across_the_queue(runtime: Runtime, make_user: Callable[..., str]) -> None:
    from orchestrate.engine.decide import Action
    from orchestrate.engine.records import Mode

    owner = make_user()
    engine: Any = runtime.run(runtime.engine())
    chain = "name: c\nsteps:\n  - {id: a, prompt: one}\n  - {id: b, prompt: 'two {{ a }}'}\n  - {id: c, prompt: 'three {{ b }}'}\n"
    # pause before anything runs: messages are consumed, nothing runs; resume finishes it
    run = runtime.run(engine.start(parse_workflow(chain), {}, owner_id=owner))
    runtime.run(engine.control(run.id, Action.PAUSE))
    for _ in range(3):
        poll_once(sqs_client_for(runtime), runtime.settings.step_queue_url or "", make_handler(runtime), wait=1)
    assert get(runtime, run.id).steps["a"].status.value == "queued"
    runtime.run(engine.control(run.id, Action.RESUME))
    assert drive(runtime, run.id, until=lambda r: r.status.finished).status is RunStatus.SUCCEEDED
    # step mode: one step per `step`
    run = runtime.run(engine.start(parse_workflow(chain), {}, owner_id=owner, mode=Mode.STEP))
    paused = drive(runtime, run.id, until=lambda r: r.status is RunStatus.PAUSED)
    assert [s.status.value for s in paused.steps.values()] == ["succeeded", "queued", "pending"]
    runtime.run(engine.control(run.id, Action.STEP))
    paused = drive(runtime, run.id, until=lambda r: r.status is RunStatus.PAUSED and r.steps["b"].status.value == "succeeded")
    assert paused.steps["c"].status.value == "queued"
    # cancel while paused: nothing more runs
    cancelled = runtime.run(engine.control(run.id, Action.CANCEL))
    assert cancelled.status is RunStatus.CANCELLED and cancelled.steps["c"].status.value == "cancelled"


def sqs_client_for(runtime: Runtime) -> Any:
    from orchestrate.aws.sqs import sqs_client

    return sqs_client(runtime.settings.aws_region, runtime.settings.sqs_endpoint_url)


NAP = "name: nap\nsteps:\n  - {id: nap, wait: {seconds: 2}}\n  - {id: after, prompt: 'woke {{ nap }}'}\n"
GATE = (
    "name: gate\nsteps:\n  - id: ask\n    approval:\n      fields: [{name: ok, type: boolean}]\n      {timeout}\n"
    "  - {id: after, prompt: 'ok was {{ steps.ask.outputs.ok }}'}\n"
)


def events_of(runtime: Runtime, run_id: str) -> list[tuple[str, str | None]]:
    events = runtime.run(runtime.run(runtime.engine()).store.events(run_id))
    return [(e.type, e.step_id) for e in events]


def test_a_wait_through_sqs_survives_the_worker_being_replaced(
    pg_url: str, make_queue: Callable[..., str], sqs_endpoint: str, make_user: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrate.aws.sqs import sqs_client
    from orchestrate.engine.records import StepMessage

    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    settings = Settings(database_url=pg_url, step_queue_url=make_queue(), sqs_endpoint_url=sqs_endpoint, use_mock=True, mock_delay=0)
    first = Runtime(settings)
    run = start(first, make_user(), NAP)
    drive(first, run.id, until=lambda r: r.steps["nap"].status.value == "waiting")
    first.close()  # the worker stops mid-wait: nothing of it stays alive
    second = Runtime(settings)
    try:
        # A duplicate wake-up before the time: it re-arms, and the step is still woken once.
        second.run(second.run(second.engine()).queue.send([StepMessage(run.id, "nap")]))
        final = drive(second, run.id, until=lambda r: r.status.finished)
        assert final.status is RunStatus.SUCCEEDED
        poll_once(sqs_client(settings.aws_region, settings.sqs_endpoint_url), settings.step_queue_url or "", make_handler(second), wait=2)
        log = events_of(second, run.id)
        assert log.count(("step.waiting", "nap")) == 1 and log.count(("step.succeeded", "nap")) == 1
        assert log.count(("step.started", "nap")) == 2
    finally:
        second.close()


def test_an_approval_through_sqs_answered_and_timed_out(runtime: Runtime, make_user: Callable[..., str]) -> None:
    from orchestrate.engine.kinds import approval

    owner = make_user()
    run = start(runtime, owner, GATE.replace("{timeout}", ""))
    drive(runtime, run.id, until=lambda r: r.steps["ask"].status.value == "waiting")
    engine = runtime.run(runtime.engine())
    runtime.run(approval.answer(engine, run.id, "ask", fields={"ok": True}, user_id=owner))
    final = drive(runtime, run.id, until=lambda r: r.status.finished)
    assert final.status is RunStatus.SUCCEEDED and final.steps["after"].prompt == "ok was True"

    timed = start(runtime, owner, GATE.replace("{timeout}", "timeout: 1\n      on_timeout: default\n      default: {ok: false}"))
    final = drive(runtime, timed.id, until=lambda r: r.status.finished)
    assert final.status is RunStatus.SUCCEEDED and final.steps["ask"].outputs == {"ok": False}
    assert final.steps["after"].prompt == "ok was False"
