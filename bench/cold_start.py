"""Cold import time of each Lambda function module: a fresh interpreter per
measurement, minus a bare interpreter's start, median of several. Prints a table,
then one JSON line.

    python bench/cold_start.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["functions.step_runner", "functions.sweeper", "functions.webhook_delivery", "functions.api"]
REPEAT = 7


def timed(code: str) -> float:
    # Configuration a deployed function has (nothing is contacted at import).
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}", "SUPABASE_JWT_SECRET": "bench-secret", "DATABASE_URL": "postgresql://bench@127.0.0.1:1/bench"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    timed("pass")  # warm the file cache and bytecode
    base = statistics.median(timed("pass") for _ in range(REPEAT))
    figures: dict[str, float] = {}
    for module in MODULES:
        if not (ROOT / (module.replace(".", "/") + ".py")).exists():
            continue
        timed(f"import {module}")
        figures[module] = (statistics.median(timed(f"import {module}") for _ in range(REPEAT)) - base) * 1000
    print(f"{'cold import of the function module':<36} {'ms':>8}")
    print(f"{'(bare interpreter start)':<36} {base * 1000:>8.0f}")
    for module, ms in figures.items():
        print(f"{module:<36} {ms:>8.0f}")
    print(json.dumps({"bench": "cold_start", "interpreter_ms": round(base * 1000, 1), **{k: round(v, 1) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
