"""Engine overhead (memory store, in-process queue, mock model at 0 s) and parallel
speed-up. Prints a table, then one line of JSON with the figures.

    python bench/engine_overhead.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workflows import chain, fan_out, independent  # noqa: E402

from orchestrate import MockProvider, parse_workflow, run_local  # noqa: E402








async def timed(text: str, delay: float) -> float:
    plan = parse_workflow(text)
    started = time.perf_counter()
    run = await run_local(plan, {}, MockProvider(delay))
    elapsed = time.perf_counter() - started
    assert run.status.value == "succeeded", run.error
    return elapsed


async def best_of(text: str, delay: float, repeat: int) -> float:
    return min([await timed(text, delay) for _ in range(repeat)])


async def main() -> None:
    figures: dict[str, float] = {}
    chain_s = await best_of(chain(200), 0.0, 5)
    fan_s = await best_of(fan_out(50), 0.0, 5)
    figures["chain_200_ms_per_step"] = chain_s * 1000 / 200
    figures["fanout_50_ms_per_step"] = fan_s * 1000 / 52
    one = statistics.median([await timed(independent(1), 0.2) for _ in range(3)])
    ten = statistics.median([await timed(independent(10), 0.2) for _ in range(3)])
    figures["one_step_200ms_s"] = one
    figures["ten_parallel_200ms_s"] = ten
    figures["parallel_ratio"] = ten / one

    rows = [
        ("200-step chain, mock 0 s", f"{figures['chain_200_ms_per_step']:.3f} ms/step", "< 1 ms/step"),
        ("50-wide fan-out + join, mock 0 s", f"{figures['fanout_50_ms_per_step']:.3f} ms/step", "< 1 ms/step"),
        ("1 step, mock 0.2 s", f"{one:.3f} s", ""),
        ("10 independent steps, mock 0.2 s", f"{ten:.3f} s", ""),
        ("parallel ratio (10 / 1)", f"{figures['parallel_ratio']:.2f}x", "<= 1.3x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'engine overhead (memory store)'.ljust(width)}  {'figure':>16}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>16}  {target}")
    print(json.dumps({"bench": "engine_overhead", **{k: round(v, 4) for k, v in figures.items()}}))


if __name__ == "__main__":
    asyncio.run(main())
