"""The webhook function's batch handling: a record names a finished run (``run_id``)
or a due delivery (``delivery_id``); a failed HTTP attempt is recorded and
rescheduled, so only an error of ours (the database) fails the record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict

from ..db.store import PostgresStore
from ..webhooks.deliveries import deliver, deliveries_of_run
from .runtime import Runtime

log = logging.getLogger("orchestrate.webhooks")


class WebhookMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    run_id: str | None = None
    delivery_id: str | None = None


def make_handler(runtime: Runtime) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    async def record_handler(record: SQSRecord) -> None:
        message = WebhookMessage.model_validate_json(record.body)  # malformed: reported, then the DLQ
        engine = await runtime.engine()
        assert isinstance(engine.store, PostgresStore)
        ids = [message.delivery_id] if message.delivery_id else await deliveries_of_run(engine.store, message.run_id or "")
        for delivery_id in ids:
            result = await deliver(engine.store, delivery_id, allow_private=runtime.settings.webhook_allow_private)
            log.info("webhook %s: %s", delivery_id, result.status)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        asyncio.set_event_loop(runtime.loop)  # see step_runner.make_handler
        return dict(async_process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context))

    return handler
