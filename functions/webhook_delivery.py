"""Lambda: send the signed webhook of finished runs (SQS batch, partial failures reported)."""

from orchestrate.aws.runtime import Runtime
from orchestrate.aws.webhook_runner import make_handler

runtime = Runtime()
handler = make_handler(runtime)
