"""The scheduled sweeper on the hosted engine."""

from __future__ import annotations

from typing import Any

from ..db.store import PostgresStore
from ..db.sweeper import sweep
from .runtime import Runtime


async def sweep_once(runtime: Runtime) -> dict[str, Any]:
    engine = await runtime.engine()
    assert isinstance(engine.store, PostgresStore)
    report = await sweep(engine.store, engine.queue)
    return report.to_dict()
