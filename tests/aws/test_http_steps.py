"""http steps through the step runner's Lambda handler and a local SQS: the run owner's
secret is read and decrypted by the runner, a 429 goes back on the queue with a delay."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrate.aws.runtime import Runtime
from orchestrate.db.secrets import PostgresSecrets
from orchestrate.engine.records import RunStatus
from orchestrate.settings import Settings
from orchestrate.spec import parse_workflow
from orchestrate.vault import new_key
from tests.aws.test_step_runner import drive, get
from tests.fakes.api_server import ApiServer, json_reply

VALUE = "ghp_7d1e0c9b2a8f4e6d"


@pytest.fixture
def runtime(pg_url: str, make_queue: Callable[..., str], sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    settings = Settings(
        database_url=pg_url, step_queue_url=make_queue(), sqs_endpoint_url=sqs_endpoint, use_mock=True, mock_delay=0,
        webhook_allow_private=True, secrets_key=new_key(),
    )
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    yield server
    server.stop()


def test_an_http_step_with_a_secret_runs_through_sqs_and_retries_a_429(runtime: Runtime, make_user: Callable[..., str], api: ApiServer) -> None:
    owner = make_user()
    engine: Any = runtime.run(runtime.engine())
    secrets = engine.secrets
    assert isinstance(secrets, PostgresSecrets)
    runtime.run(secrets.put(owner, "GH_TOKEN", VALUE))
    api.then(json_reply({"error": "rate limited"}, 429, **{"retry-after": "1"})).then(json_reply({"stars": 42}))
    text = (
        "name: gh\nsteps:\n"
        f"  - {{id: repo, http: {{url: '{api.url}/repos/x', headers: {{Authorization: 'token {{{{ secrets.GH_TOKEN }}}}'}}}},"
        " outputs: [{name: stars, type: integer}], retry: {max_attempts: 3, initial_delay: 0}}\n"
        "  - {id: note, prompt: 'It has {{ steps.repo.outputs.stars }} stars'}\n"
    )
    run = runtime.run(engine.start(parse_workflow(text), {}, owner_id=owner))
    final = drive(runtime, run.id, until=lambda r: r.status.finished)
    assert final.status is RunStatus.SUCCEEDED, final.error
    assert [r.headers["authorization"] for r in api.requests] == [f"token {VALUE}"] * 2
    repo = final.steps["repo"]
    assert repo.attempt == 2 and repo.outputs == {"stars": 42}
    assert final.steps["note"].prompt == "It has 42 stars"
    events = runtime.run(engine.store.events(run.id))
    retry = next(e for e in events if e.type == "step.retrying")
    assert retry.data["delay"] >= 1.0  # Retry-After honoured: the message went back delayed
    assert VALUE not in json.dumps(get(runtime, run.id).to_dict()) + json.dumps([e.to_dict() for e in events])
