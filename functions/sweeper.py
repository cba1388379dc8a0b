"""Lambda, every minute: re-enqueue stuck steps and reclaim lapsed leases."""

from typing import Any

from orchestrate.aws.runtime import Runtime
from orchestrate.aws.sweeper import sweep_once

runtime = Runtime()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runtime.run(sweep_once(runtime))
