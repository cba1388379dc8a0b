"""`orchestrate worker` as a user runs it: a process that takes steps from a local SQS."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from orchestrate.aws.sqs import SqsQueue, sqs_client
from orchestrate.db.store import PostgresStore
from orchestrate.engine.core import Engine
from orchestrate.engine.records import RunStatus
from orchestrate.llm import MockProvider
from orchestrate.spec import parse_workflow

FAN = "name: fan\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: 'x {{ a }}'}\n  - {id: c, prompt: 'y {{ a }}'}\n  - {id: d, prompt: '{{ b }} {{ c }}'}\n"


async def test_orchestrate_worker_runs_a_workflow_through_sqs(
    pg_url: str, make_user: Callable[..., str], make_queue: Callable[..., str], sqs_endpoint: str
) -> None:
    queue_url = make_queue(visibility=5)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ORCHESTRATE_"))},
        "DATABASE_URL": pg_url,
        "ORCHESTRATE_STEP_QUEUE_URL": queue_url,
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
        "ORCHESTRATE_USE_MOCK": "1",
        "ORCHESTRATE_MOCK_DELAY": "0",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "worker", "--sweep-every", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    store = await PostgresStore.open(pg_url)
    try:
        engine = Engine(store, SqsQueue(queue_url, sqs_client("us-east-1", sqs_endpoint)), MockProvider())
        run = await engine.start(parse_workflow(FAN), {}, owner_id=make_user())
        for _ in range(300):
            final = await store.get_run(run.id)
            if final is not None and final.status.finished:
                break
            await asyncio.sleep(0.1)
        assert final is not None and final.status is RunStatus.SUCCEEDED, worker.stderr.read() if worker.poll() is not None else final
        assert all(s.output and s.model == "mock-gpt-4o" for s in final.steps.values())
    finally:
        await store.close()
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr
    assert "worker: stopped" in stderr and "Traceback" not in stderr
