"""The Queue interface on SQS. A step message is ``{"run_id", "step_id"}``: only a wake-up,
so a send that fails after the database committed loses nothing (the sweeper
re-enqueues steps queued too long ago)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..engine.records import StepMessage

log = logging.getLogger("orchestrate.sqs")

MAX_DELAY = 900  # SQS's limit (15 minutes); longer delays are the sweeper's job
BATCH = 10  # SQS's limit per SendMessageBatch


class StepMessageBody(BaseModel):
    """The queue message, validated where it enters: a poison message is reported."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    run_id: str
    step_id: str


def sqs_client(region: str, endpoint_url: str | None = None) -> Any:
    import boto3  # heavy: loaded only when a queue is used

    return boto3.client("sqs", region_name=region, endpoint_url=endpoint_url)


class SqsQueue:
    def __init__(self, url: str, client: Any) -> None:
        self.url = url
        self.client = client

    async def send(self, messages: Sequence[StepMessage], delay: float = 0.0) -> None:
        await self.send_bodies([{"run_id": m.run_id, "step_id": m.step_id} for m in messages], delay)

    async def send_bodies(self, bodies: Sequence[dict[str, str]], delay: float = 0.0) -> None:
        """Send JSON bodies in batches of ten. A failure is logged, not raised: the
        state is committed, and the sweeper re-drives what a lost message would have."""
        if not bodies or delay > MAX_DELAY:
            return  # nothing to send, or too far ahead: the sweeper enqueues it when due
        seconds = min(MAX_DELAY, math.ceil(delay))
        entries = [{"Id": str(i), "MessageBody": json.dumps(body), "DelaySeconds": seconds} for i, body in enumerate(bodies)]
        for start in range(0, len(entries), BATCH):
            chunk = entries[start : start + BATCH]
            try:
                response = await asyncio.to_thread(self.client.send_message_batch, QueueUrl=self.url, Entries=chunk)
            except Exception as exc:  # botocore's errors
                log.warning("could not enqueue %d message(s), the sweeper will: %s", len(chunk), exc)
                continue
            for failed in response.get("Failed", []):
                log.warning("SQS refused message %s (%s), the sweeper will re-drive it", failed.get("Id"), failed.get("Message"))

    async def run_finished(self, run_id: str) -> None:
        """On the webhook queue: a run ended, its delivery may be sent."""
        await self.send_bodies([{"run_id": run_id}])


def parse_body(body: str) -> StepMessage:
    """A queue message body as a StepMessage; pydantic's ValidationError if malformed."""
    parsed = StepMessageBody.model_validate_json(body)
    return StepMessage(parsed.run_id, parsed.step_id)
