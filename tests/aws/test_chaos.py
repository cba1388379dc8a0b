"""Chaos: 200 runs of an 8-step fan-out/join (one a 4-item for_each, one an http call, one a durable wait) through real SQS (moto) and real Postgres,
while the harness duplicates 20% of messages, drops 10% (the sweeper recovers them),
crashes 10% of invocations between the model call and the commit, and the model (and
the API an http step calls) answers 429 or 500 on 5% of calls. Every run must succeed exactly once, with one
recorded output per step and an event log that matches the step states."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from orchestrate.aws.runtime import Runtime
from orchestrate.aws.sqs import SqsQueue, sqs_client
from orchestrate.aws.step_runner import make_handler
from orchestrate.aws.worker import poll_once
from orchestrate.db.store import PostgresStore
from orchestrate.db.sweeper import sweep
from orchestrate.engine.core import Engine
from orchestrate.engine.kinds.http import HttpPolicy
from orchestrate.engine.records import StepMessage
from orchestrate.errors import ProviderTransient
from orchestrate.llm import ChatRequest, Completion, MockProvider
from orchestrate.settings import Settings
from orchestrate.spec import parse_workflow
from tests.fakes.api_server import ApiServer, Reply, json_reply

RUNS = int(os.environ.get('CHAOS_RUNS', '200'))
WORKERS = 3
ACTIVE = 40  # runs in flight at once
WORKFLOW = """
name: chaos
defaults: {model: gpt-4o}
steps:
  - {id: plan, prompt: start, retry: {max_attempts: 10, initial_delay: 0.2, max_delay: 1}}
  - {id: left, prompt: 'L {{ plan }}', retry: {max_attempts: 10, initial_delay: 0.2, max_delay: 1}}
  - {id: middle, prompt: 'M {{ plan }}', retry: {max_attempts: 10, initial_delay: 0.2, max_delay: 1}}
  - {id: right, prompt: 'R {{ plan }}', retry: {max_attempts: 10, initial_delay: 0.2, max_delay: 1}}
  - {id: fetch, http: {url: 'API/n/{{ plan | length }}'}, retry: {max_attempts: 10, initial_delay: 0.2, max_delay: 1}}
  - {id: each, for_each: "{{ ['a', 'b', 'c', 'd'] }}", concurrency: 2, prompt: 'E {{ item }} {{ plan }}', retry: {max_attempts: 10, initial_delay: 0.2, max_delay: 1}}
  - {id: nap, needs: plan, wait: {seconds: 1}, retry: {max_attempts: 10}}
  - {id: join, needs: nap, prompt: '{{ left }} {{ middle }} {{ right }} {{ each | join }} {{ fetch }}', retry: {max_attempts: 10, initial_delay: 0.2, max_delay: 1}}
"""
ITEMS = [f"each[{i}]" for i in range(4)]


class Chaos:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def roll(self, kind: str, probability: float) -> bool:
        with self.lock:
            hit = self.random.random() < probability
            if hit:
                self.counts[kind] += 1
            return hit


class ChaosQueue:
    def __init__(self, inner: SqsQueue, chaos: Chaos) -> None:
        self.inner, self.chaos = inner, chaos

    async def send(self, messages: Sequence[StepMessage], delay: float = 0.0) -> None:
        out: list[StepMessage] = []
        for message in messages:
            if self.chaos.roll("dropped", 0.10):
                continue
            out.append(message)
            if self.chaos.roll("duplicated", 0.20):
                out.append(message)
        await self.inner.send(out, delay)


class Crash(Exception):
    """The invocation dies after the model answered, before anything is committed."""


class ChaosStore:
    def __init__(self, inner: PostgresStore, chaos: Chaos) -> None:
        self.inner, self.chaos = inner, chaos

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def complete(self, claim: Any, outcome: Any) -> Any:
        if self.chaos.roll("crashed", 0.10):
            raise Crash("injected crash between the model call and the commit")
        return await self.inner.complete(claim, outcome)


class ChaosProvider:
    def __init__(self, chaos: Chaos) -> None:
        self.mock, self.chaos = MockProvider(0.0), chaos
        self.calls = 0

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        if self.chaos.roll("provider_errors", 0.05):
            raise ProviderTransient("the model server answered 429", retry_after=0.05) if self.chaos.random.random() < 0.5 else ProviderTransient("the model server answered 500")
        return await self.mock.complete(request)


def test_chaos(pg_url: str, make_user: Callable[..., str], make_queue: Callable[..., str], sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    chaos = Chaos(seed=20261123)
    queue_url = make_queue(visibility=2)
    settings = Settings(database_url=pg_url, step_queue_url=queue_url, sqs_endpoint_url=sqs_endpoint)
    owner = make_user()
    api = ApiServer()  # the http step's API: 429 or 500 on 5% of requests, like the model
    for _ in range(RUNS * 3):
        fail = chaos.roll("api_errors", 0.05)
        api.then(json_reply({"error": "busy"}, 429, **{"retry-after": "0"}) if fail and chaos.random.random() < 0.5 else Reply(500) if fail else json_reply({"ok": True}))
    plan = parse_workflow(WORKFLOW.replace("API", api.url))

    def container() -> Runtime:
        """A Lambda container: its own loop, pool and engine, with chaos around them."""
        runtime = Runtime(settings)

        async def build() -> Engine:
            store = await PostgresStore.open(pg_url, max_size=10)
            queue = ChaosQueue(SqsQueue(queue_url, sqs_client("us-east-1", sqs_endpoint)), chaos)
            return Engine(ChaosStore(store, chaos), queue, ChaosProvider(chaos), http=HttpPolicy(allow_private=True))  # type: ignore[arg-type]

        runtime.use(runtime.run(build()))
        return runtime

    starter = container()
    engine = starter.run(starter.engine())
    store: PostgresStore = engine.store.inner  # type: ignore[attr-defined]
    run_ids: list[str] = []

    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        runtime = container()
        handler = make_handler(runtime)
        client = sqs_client("us-east-1", sqs_endpoint)
        try:
            while not stop.is_set():
                # A short context: the lease lapses soon after a crash, as Lambda's would.
                poll_once(client, queue_url, handler, wait=1, timeout=7.0)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
        finally:
            runtime.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()

    def unfinished() -> int:
        async def count() -> int:
            async with store.transaction() as conn:
                cur = await conn.execute("select count(*) from public.runs where id = any(%s) and status not in ('succeeded', 'failed', 'cancelled')", (run_ids,))
                row = await cur.fetchone()
            return int(row[0])  # type: ignore[index]

        return starter.run(count())

    # Runs start in waves of ACTIVE, as traffic would arrive (moto's SQS slows down
    # quadratically with the number of messages in flight; AWS does not).
    deadline = time.monotonic() + 600  # a guard against a hang, not a timing: loaded CI machines are slow
    try:
        while (len(run_ids) < RUNS or unfinished()) and time.monotonic() < deadline and not errors:
            for _ in range(min(RUNS - len(run_ids), ACTIVE - unfinished())):
                run_ids.append(starter.run(engine.start(plan, {}, owner_id=owner)).id)
            starter.run(sweep(store, engine.queue, grace_seconds=3.0))
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors

    async def load() -> tuple[list[Any], list[Any]]:
        async with store.transaction() as conn:
            runs = await (await conn.execute("select id::text, status from public.runs where id = any(%s)", (run_ids,))).fetchall()
            events = await (await conn.execute("select run_id::text, seq, type, step_id from public.run_events where run_id = any(%s) order by run_id, seq", (run_ids,))).fetchall()
        return runs, events

    runs, events = starter.run(load())
    final = [starter.run(store.get_run(run_id)) for run_id in run_ids[:20]]
    stuck = [rid for rid, status in runs if status != "succeeded"]
    for rid in stuck[:3]:
        run = starter.run(store.get_run(rid))
        print("STUCK", rid, [(s.step_id, s.status.value, s.attempt, s.released, s.lease_until, s.not_before, s.queued_at) for s in run.steps.values()])  # type: ignore[union-attr]
        print([e for e in events if e[0] == rid])
    starter.close()
    api.stop()
    assert len(run_ids) == RUNS
    assert Counter(status for _, status in runs) == {"succeeded": RUNS}
    by_run: dict[str, list[tuple[int, str, str | None]]] = {}
    for run_id, seq, type_, step_id in events:
        by_run.setdefault(run_id, []).append((seq, type_, step_id))
    for run_id in run_ids:
        log = by_run[run_id]
        assert [seq for seq, _, _ in log] == list(range(1, len(log) + 1))  # gapless
        succeeded = Counter(step for _, type_, step in log if type_ == "step.succeeded")
        assert succeeded == {sid: 1 for sid in [*plan.steps, *ITEMS]}, (run_id, succeeded)  # one recorded output per step and item
        assert [t for _, t, _ in log].count("run.succeeded") == 1  # finished once
        assert log[-1][1] == "run.succeeded"
    assert all(s.status.value == "succeeded" and s.output for run in final for s in run.steps.values())  # type: ignore[union-attr]
    for run in final:  # the for_each's answer: its items' answers, in order, each once
        assert run is not None and run.steps["each"].outputs == [run.steps[i].output for i in ITEMS]
    # The chaos really happened.
    assert chaos.counts["dropped"] > 50 and chaos.counts["duplicated"] > 100 and chaos.counts["crashed"] > 50 and chaos.counts["provider_errors"] > 20, chaos.counts
    assert chaos.counts["api_errors"] > RUNS // 20 and len(api.requests) > RUNS, chaos.counts
