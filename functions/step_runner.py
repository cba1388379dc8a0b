"""Lambda: run one workflow step per SQS record (batch, partial failures reported)."""

from orchestrate.aws.runtime import Runtime
from orchestrate.aws.step_runner import make_handler

runtime = Runtime()
handler = make_handler(runtime)
