"""``orchestrate worker``: receive from SQS and call the step runner's Lambda handler
with the event Lambda would build, so the whole chain runs on a laptop."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("orchestrate.worker")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LocalContext:
    """The part of Lambda's context object the handler reads."""

    timeout: float
    function_name: str = "orchestrate-step-runner-local"
    aws_request_id: str = "local"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS event as Lambda delivers it (see tests/fixtures/sqs_event.json)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def poll_once(client: Any, queue_url: str, handler: Handler, *, wait: int = 10, timeout: float = 60.0, region: str = "us-east-1") -> int:
    """Receive one batch, hand it to ``handler``, delete what succeeded. Returns the batch size."""
    os.environ.setdefault("LAMBDA_TASK_ROOT", os.getcwd())  # run the handler as Lambda's runtime would
    response = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, AttributeNames=["All"])
    messages = response.get("Messages", [])
    if not messages:
        return 0
    arn = f"arn:aws:sqs:{region}:000000000000:{queue_url.rsplit('/', 1)[-1]}"
    try:
        result = handler(sqs_event(messages, arn, region), LocalContext(timeout))
    except Exception:  # as on Lambda: an invocation error leaves the whole batch to SQS
        log.exception("the step runner failed; SQS redelivers the batch after the visibility timeout")
        return len(messages)
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if m["MessageId"] not in failed]
    if done:
        client.delete_message_batch(QueueUrl=queue_url, Entries=done)
    if failed:
        log.warning("%d message(s) failed; SQS redelivers them after the visibility timeout", len(failed))
    return len(messages)


def run_worker(
    client: Any,
    queue_url: str,
    handler: Handler,
    *,
    sweep: Callable[[], Any] | None = None,
    sweep_every: float = 30.0,
    stop: threading.Event | None = None,
    wait: int = 10,
    timeout: float = 60.0,
    region: str = "us-east-1",
) -> None:
    """Poll until ``stop`` is set, sweeping every ``sweep_every`` seconds."""
    stop = stop or threading.Event()
    next_sweep = time.monotonic()
    while not stop.is_set():
        if sweep is not None and time.monotonic() >= next_sweep:
            sweep()
            next_sweep = time.monotonic() + sweep_every
        poll_once(client, queue_url, handler, wait=wait, timeout=timeout, region=region)
