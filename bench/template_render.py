"""Template rendering: the cost of an ordinary prompt through the bounded sandbox
(in-thread and through ``render_async``), and what a hostile template costs before
it is refused (CPU and peak allocation). Prints a table, then one line of JSON.

    python bench/template_render.py
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc

from orchestrate.errors import TemplateError
from orchestrate.templates import namespace, render, render_async

CONTEXT = {
    "inputs": namespace({"topic": "tea", "items": [f"item {i}" for i in range(50)]}),
    "steps": namespace({"a": namespace({"output": "x" * 2000, "outputs": namespace({"pains": ["a", "b", "c"]}), "status": "succeeded"})}),
}
ORDINARY = {
    "interpolation": "About {{ inputs.topic }}: {{ steps.a.output }}",
    "join filter": "Pains: {{ steps.a.outputs.pains | join(', ') }}",
    "50-item loop": "{% for x in inputs.items %}- {{ loop.index }}. {{ x | upper }}\n{% endfor %}",
}
HOSTILE = {
    "width (refused at once)": "{{ 'x'.center(100000000) }}",
    "output bound": "{% set big = 'x' * 1000000 %}{% for i in range(1000) %}{{ big }}{% endfor %}",
    "CPU bound": "{% set big = 'ab' * 500000 %}{% for i in range(100000) %}{{ big.count('c') }}{% endfor %}",
}


def per_render_us(source: str, repeat: int = 2000) -> float:
    render(source, CONTEXT)
    started = time.perf_counter()
    for _ in range(repeat):
        render(source, CONTEXT)
    return (time.perf_counter() - started) / repeat * 1e6


async def async_render_us(source: str, repeat: int = 500) -> float:
    await render_async(source, CONTEXT)
    started = time.perf_counter()
    for _ in range(repeat):
        await render_async(source, CONTEXT)
    return (time.perf_counter() - started) / repeat * 1e6


def refused(source: str) -> tuple[float, float]:
    tracemalloc.start()
    cpu = time.thread_time()
    try:
        render(source, {})
    except TemplateError:
        pass
    else:
        raise AssertionError(f"not refused: {source}")
    spent = time.thread_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return spent, peak


def main() -> None:
    figures: dict[str, float] = {}
    rows: list[tuple[str, str, str]] = []
    for name, source in ORDINARY.items():
        key = name.replace(" ", "_").replace("-", "_")
        figures[f"{key}_us"] = per_render_us(source)
        rows.append((f"render: {name}", f"{figures[f'{key}_us']:.1f} us", ""))
    figures["async_interpolation_us"] = asyncio.run(async_render_us(ORDINARY["interpolation"]))
    rows.append(("render_async (worker thread): interpolation", f"{figures['async_interpolation_us']:.1f} us", ""))
    for name, source in HOSTILE.items():
        key = name.split(" (")[0].replace(" ", "_")
        cpu, peak = refused(source)
        figures[f"hostile_{key}_cpu_s"], figures[f"hostile_{key}_peak_mib"] = cpu, peak
        rows.append((f"hostile: {name}", f"{cpu:.2f} s, {peak:.1f} MiB", "<= 1 s CPU, < 3 MiB"))
    width = max(len(r[0]) for r in rows)
    print(f"{'template rendering'.ljust(width)}  {'figure':>18}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>18}  {target}")
    print(json.dumps({"bench": "template_render", **{k: round(v, 4) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
