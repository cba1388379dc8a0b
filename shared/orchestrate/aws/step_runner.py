"""The step runner's batch handling: each SQS record is one step, processed
concurrently with the others; records that fail are reported back to SQS
(``batchItemFailures``) so only they are redelivered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from .runtime import Runtime
from .sqs import parse_body

log = logging.getLogger("orchestrate.step_runner")

LEASE_RESERVE = 5.0  # seconds kept back from the invocation's remaining time


def make_handler(runtime: Runtime) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    # Report every failed record, even when all failed: the same answer for any batch.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    invocation: dict[str, Any] = {}

    async def record_handler(record: SQSRecord) -> None:
        try:
            message = parse_body(record.body)
        except ValidationError as exc:
            # A poison message can never succeed: report it (SQS moves it to the DLQ).
            log.error("malformed step message %s: %s", record.message_id, exc.errors(include_url=False))
            raise
        engine = await runtime.engine()
        # The lease lapses when Lambda would have killed us, so a crash is reclaimed then.
        context = invocation.get("context")
        remaining = context.get_remaining_time_in_millis() / 1000 - LEASE_RESERVE if context else None
        try:
            await engine.process(message, lease_seconds=max(remaining, 1.0) if remaining is not None else None)
        except Exception as exc:
            from ..db.connect import connection_lost

            reason = connection_lost(exc)
            if reason is not None:  # handled: SQS redelivers the record; one line, no traceback
                log.warning("step %s/%s: %s; SQS redelivers it", message.run_id, message.step_id, reason)
            raise

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        invocation["context"] = context
        # In Lambda (LAMBDA_TASK_ROOT set) Powertools runs the batch on the current loop:
        # make it the runtime's, where the engine's connection pool lives.
        asyncio.set_event_loop(runtime.loop)
        return dict(async_process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context))

    return handler
