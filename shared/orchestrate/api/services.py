"""What the routes use: the Postgres store, the engine (for starting and controlling
runs), and the workflow repository. Built once per process and passed to the app.

``open_services`` is the hosted shape (API only; steps run elsewhere, woken through the
queue). ``local_stack`` adds an in-process worker and sweeper: ``orchestrate serve``,
the tests and the benchmark."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..db.connect import connection_lost
from ..db.store import PostgresStore
from ..db.sweeper import SweepReport
from ..db.watch import RunWatch
from ..db.workflows import Workflows
from ..engine.core import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_WORKFLOW_DEPTH, Engine
from ..engine.queue import InProcessQueue, Queue, consume
from ..engine.records import StepMessage
from ..errors import ConfigError
from ..llm.base import ChatRequest, Completion, Provider
from ..settings import Settings

if TYPE_CHECKING:
    from ..webhooks.local import InlineWebhooks

log = logging.getLogger("orchestrate.api")

SWEEP_EVERY = 30.0  # seconds between in-process sweeps (re-drive what a restart left queued)
WORKER_CONCURRENCY = 64  # steps one local worker runs at once


@dataclass(frozen=True)
class Services:
    store: PostgresStore
    engine: Engine
    workflows: Workflows
    watch: RunWatch  # the one poller behind every events long-poll and stream
    allow_private_webhooks: bool = False  # webhook URLs may name private addresses (local development)


class NoModel:
    """The API process starts and controls runs but never calls a model itself."""

    async def complete(self, request: ChatRequest) -> Completion:  # pragma: no cover - never called
        raise ConfigError("this process does not run steps; the step runner does")


def make_queue(settings: Settings) -> Queue:
    """SQS when ORCHESTRATE_STEP_QUEUE_URL is set, else an in-process queue."""
    if settings.step_queue_url:
        from ..aws.sqs import SqsQueue, sqs_client

        return SqsQueue(settings.step_queue_url, sqs_client(settings.aws_region, settings.sqs_endpoint_url))
    log.warning("no step queue configured (ORCHESTRATE_STEP_QUEUE_URL): runs wait for the sweeper")
    return InProcessQueue()


@asynccontextmanager
async def open_services(settings: Settings, *, queue: Queue | None = None, max_size: int = 4) -> AsyncIterator[Services]:
    """The hosted API's services: a small pool (Lambda serves one request at a time)."""
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set: the API needs the Postgres database")
    store = await PostgresStore.open(settings.database_url, max_size=max_size)
    webhooks = None
    if settings.webhook_queue_url:  # a cancel ends a run here: wake its webhook's sender
        from ..aws.sqs import SqsQueue, sqs_client

        webhooks = SqsQueue(settings.webhook_queue_url, sqs_client(settings.aws_region, settings.sqs_endpoint_url))
    try:
        engine = Engine(
            store, queue or make_queue(settings), NoModel(), default_model=settings.default_model, webhooks=webhooks,
            max_in_flight=settings.run_max_in_flight, library=Workflows(store), max_workflow_depth=settings.max_workflow_depth,
            api_url=settings.api_url,
        )
        watch = RunWatch(store)
        try:
            yield Services(store, engine, Workflows(store), watch, allow_private_webhooks=settings.webhook_allow_private)
        finally:
            await watch.close()
    finally:
        await store.close()


@asynccontextmanager
async def local_stack(
    conninfo: str,
    provider: Provider,
    *,
    default_model: str = "gpt-4o",
    concurrency: int = WORKER_CONCURRENCY,
    max_size: int = 20,
    sweep: bool = True,
    allow_private_webhooks: bool = False,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    max_workflow_depth: int = DEFAULT_MAX_WORKFLOW_DEPTH,
    api_url: str | None = "http://127.0.0.1:8000",
) -> AsyncIterator[Services]:
    """API services plus an in-process worker on one pool: everything in one process.
    Webhooks go out as soon as a run ends; the sweeper retries the ones that failed."""
    from ..webhooks.local import InlineWebhooks

    store = await PostgresStore.open(conninfo, max_size=max_size)
    queue = InProcessQueue()
    webhooks = InlineWebhooks(store, allow_private=allow_private_webhooks)
    workflows = Workflows(store)
    engine = Engine(
        store, queue, provider, default_model=default_model, webhooks=webhooks, max_in_flight=max_in_flight,
        library=workflows, max_workflow_depth=max_workflow_depth, api_url=api_url,
    )

    async def handle(message: StepMessage) -> None:
        try:
            await engine.process(message)
        except Exception as exc:  # the sweeper re-drives the step; keep the worker alive
            reason = connection_lost(exc)
            if reason is None:
                log.exception("step %s/%s failed to process", message.run_id, message.step_id)
            else:
                log.warning("step %s/%s: %s; the sweeper re-drives it", message.run_id, message.step_id, reason)

    tasks = [asyncio.create_task(consume(queue, handle, concurrency), name="orchestrate-worker")]
    if sweep:
        tasks.append(asyncio.create_task(_sweep_forever(engine, store, queue, webhooks), name="orchestrate-sweeper"))
    watch = RunWatch(store)
    try:
        yield Services(store, engine, workflows, watch, allow_private_webhooks=allow_private_webhooks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await watch.close()
        await webhooks.drain()
        queue.close()
        await store.close()


async def _sweep_forever(engine: Engine, store: PostgresStore, queue: Queue, webhooks: InlineWebhooks) -> None:
    from ..db.sweeper import DEFAULT_GRACE, rearm_waits, settle_families, sweep

    # The first sweep runs at start with no grace for queued steps: their messages were
    # in the in-process queue of the process that stopped, so nothing else will wake
    # them (a duplicate wake-up is harmless). Running steps still wait for their lease.
    # Timed waits get their wake-ups again, delayed to their time.
    try:
        rearmed = await rearm_waits(store, queue)
        if rearmed:
            log.info("start-up sweep: re-armed %d waiting step(s)", rearmed)
    except Exception as exc:
        _log_failure("re-arming waits", exc)
    grace = 0.0
    while True:
        try:
            report = await sweep(store, queue, grace_seconds=grace)
            _log_sweep(report, at_start=grace == 0.0)
            grace = DEFAULT_GRACE
        except Exception as exc:
            _log_failure("sweep", exc)
        try:
            await settle_families(engine, store)
        except Exception as exc:
            _log_failure("child run sweep", exc)
        try:  # on its own: stuck steps and webhooks do not hold each other up
            await webhooks.sweep(budget=SWEEP_EVERY)
        except Exception as exc:
            _log_failure("webhook sweep", exc)
        await asyncio.sleep(SWEEP_EVERY)


def _log_failure(what: str, exc: Exception) -> None:
    reason = connection_lost(exc)
    if reason is None:
        log.exception("%s failed; trying again in %.0fs", what, SWEEP_EVERY)
    else:
        log.warning("%s skipped: %s; trying again in %.0fs", what, reason, SWEEP_EVERY)


def _log_sweep(report: SweepReport, *, at_start: bool, most: int = 20) -> None:
    """One line per run resumed (at most ``most``), so a restart says what it picked up."""
    if not report.requeued:
        return
    runs: dict[str, list[str]] = {}
    for message in report.steps:
        runs.setdefault(message.run_id, []).append(message.step_id)
    what = "start-up sweep" if at_start else "sweep"
    for run_id, steps in list(runs.items())[:most]:
        log.info("%s: re-enqueued run %s steps %s", what, run_id, ", ".join(steps))
    if len(runs) > most:
        log.info("%s: re-enqueued %d more runs", what, len(runs) - most)
