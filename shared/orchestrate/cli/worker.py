"""``orchestrate worker``: the step runner on a laptop. It receives from SQS (a local
one such as moto's server, or AWS) and calls the same Lambda handler, sweeping
stuck steps and due webhooks every so often."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from ..settings import Settings
from .app import err, guard


def worker(
    queue_url: Annotated[str | None, typer.Option("--queue-url", help="The step queue. Default: $ORCHESTRATE_STEP_QUEUE_URL.")] = None,
    sweep_every: Annotated[float, typer.Option("--sweep-every", help="Seconds between sweeps.")] = 30.0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds an invocation may run (the lease).")] = 900.0,
    mock: Annotated[bool, typer.Option("--mock", help="Use the built-in mock model.")] = False,
) -> None:
    """Run workflow steps from SQS with the Lambda step runner's handler."""
    from ..aws.runtime import Runtime
    from ..aws.sqs import sqs_client
    from ..aws.step_runner import make_handler
    from ..aws.worker import run_worker
    from ..db.embedded import resolve_database_url
    from ..db.migrate import migrate
    from ..errors import ConfigError

    with guard():
        settings = Settings.from_env()
        url = queue_url or settings.step_queue_url
        if not url:
            raise ConfigError("no step queue: set ORCHESTRATE_STEP_QUEUE_URL (and AWS_ENDPOINT_URL_SQS for a local SQS) or pass --queue-url")
        target = resolve_database_url(settings.database_url)
        migrate(target.conninfo)
        settings = settings.with_(database_url=target.conninfo, step_queue_url=url, use_mock=settings.use_mock or mock)
        runtime = Runtime(settings)
        handler = make_handler(runtime)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        err.print(f"worker: {url} · database {target.description} · model {'mock' if settings.use_mock else settings.default_model}", highlight=False)
        try:
            run_worker(
                sqs_client(settings.aws_region, settings.sqs_endpoint_url),
                url,
                handler,
                sweep=lambda: runtime.run(_sweep(runtime)),
                sweep_every=sweep_every,
                stop=stop,
                wait=5,
                timeout=timeout,
                region=settings.aws_region,
            )
        finally:
            runtime.close()
            target.close()
        err.print("worker: stopped")


async def _sweep(runtime: Any) -> None:
    """The scheduled sweeper's work; without a webhook queue, due webhooks go out inline."""
    from ..aws.sweeper import sweep_once
    from ..webhooks.deliveries import deliver_due

    await sweep_once(runtime)
    if not runtime.settings.webhook_queue_url:
        engine = await runtime.engine()
        await deliver_due(engine.store, allow_private=runtime.settings.webhook_allow_private)
