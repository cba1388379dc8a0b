"""moto's server (``python -m tests.fakes.moto_server -H 127.0.0.1 -p PORT``), with its
SQS receive made linear.

moto checks each message it hands out against the queue's retention period by building
every queue attribute, and three of them count the whole queue: each receive costs
O(messages in the queue) per message, so a busy queue (tests/aws/test_chaos.py) spent
most of the suite's CPU time in moto. The same check reads the one attribute here;
everything else is moto's own SQS, spoken to by the real boto3 client."""

from __future__ import annotations

from moto.core.utils import unix_time
from moto.server import main
from moto.sqs.models import Message, SQSBackend


def _retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's ``is_message_valid_based_on_retention_period``, without counting the queue."""
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
