"""Cold import time of each Lambda function module: a fresh interpreter per
measurement, minus a bare interpreter's start, median of several. Wall time is the
figure; the CPU time of the same runs is printed beside it, since on a shared machine
waiting for a core inflates wall time but not CPU time. Prints a table, then one JSON line.

    python bench/cold_start.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["functions.step_runner", "functions.sweeper", "functions.webhook_delivery", "functions.api"]
REPEAT = 7


def timed(code: str) -> tuple[float, float]:
    """(wall, cpu) seconds of a fresh interpreter running ``code``."""
    # Configuration a deployed function has (nothing is contacted at import).
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}", "SUPABASE_JWT_SECRET": "bench-secret", "DATABASE_URL": "postgresql://bench@127.0.0.1:1/bench"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(code: str) -> tuple[float, float]:
    samples = [timed(code) for _ in range(REPEAT)]
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def main() -> None:
    timed("pass")  # warm the file cache and bytecode
    base, base_cpu = median("pass")
    figures: dict[str, tuple[float, float]] = {}
    for module in MODULES:
        if not (ROOT / (module.replace(".", "/") + ".py")).exists():
            continue
        timed(f"import {module}")
        wall, cpu = median(f"import {module}")
        figures[module] = ((wall - base) * 1000, (cpu - base_cpu) * 1000)
    print(f"{'cold import of the function module':<36} {'ms':>8} {'cpu ms':>8}")
    print(f"{'(bare interpreter start)':<36} {base * 1000:>8.0f} {base_cpu * 1000:>8.0f}")
    for module, (ms, cpu_ms) in figures.items():
        print(f"{module:<36} {ms:>8.0f} {cpu_ms:>8.0f}")
    print(
        json.dumps(
            {
                "bench": "cold_start",
                "interpreter_ms": round(base * 1000, 1),
                **{k: round(v[0], 1) for k, v in figures.items()},
                "cpu_ms": {k: round(v[1], 1) for k, v in figures.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
