"""Hostile templates (issue 8, section 5): every render either finishes within its
bounds or fails with ``template-error`` naming the bound, having allocated no more
than a few MiB and used about a second of CPU at most; through the engine too, as a
prompt and as a ``when:`` (at a run's start and after a step)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from orchestrate.engine.local import run_local
from orchestrate.engine.memory import MemoryStore
from orchestrate.errors import SpecError, TemplateError
from orchestrate.sandbox import MAX_CPU
from orchestrate.spec import parse_workflow, resolve_inputs
from orchestrate.templates import evaluate, render
from tests.fakes.providers import RecordingProvider
from tests.security.probes import EXPRESSIONS, STATEMENTS

MiB = 1024 * 1024
# The CPU budget is checked between operations; one operation may overrun it a little
# (and a collection of this big test process's whole heap may run inside one).
CPU_MARGIN = 1.0
# What a refusal names: a size, a count, CPU, or what is not available.
LIMITS = "larger than|more than|not available|is undefined|Range too big|recursion depth"

PROMPTS = {**{f"{k} (prompt)": "{{ " + v + " }}" for k, v in EXPRESSIONS.items()}, **STATEMENTS}
CONDITIONS = {f"{k} (when)": f"({v}) == 0" for k, v in EXPRESSIONS.items()}


@pytest.fixture(scope="module")
def traced() -> Iterator[None]:
    render("{{ 'warm up' ~ 1 }}", {})
    tracemalloc.start()
    yield
    tracemalloc.stop()


def _measure(work: object) -> tuple[BaseException | None, float, float]:
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    cpu = time.thread_time()
    error: BaseException | None = None
    try:
        work()  # type: ignore[operator]
    except TemplateError as exc:
        error = exc
    return error, (tracemalloc.get_traced_memory()[1] - before) / MiB, time.thread_time() - cpu


@pytest.mark.parametrize("source", PROMPTS.values(), ids=PROMPTS.keys())
def test_a_hostile_prompt_fails_within_its_bounds(traced: None, source: str) -> None:
    error, peak, cpu = _measure(lambda: render(source, {}))
    assert error is not None, "the render should have been refused"
    assert error.type == "template-error"
    assert any(word in str(error) for word in LIMITS.split("|")), str(error)
    assert peak < 3, f"allocated {peak:.1f} MiB"
    assert cpu < MAX_CPU + CPU_MARGIN, f"used {cpu:.2f} s of CPU"


@pytest.mark.parametrize("expression", CONDITIONS.values(), ids=CONDITIONS.keys())
def test_a_hostile_condition_fails_within_its_bounds(traced: None, expression: str) -> None:
    error, peak, cpu = _measure(lambda: evaluate(expression, {}))
    if error is None:
        return  # it evaluated (to a boolean) within the bounds measured below
    assert error.type == "template-error"
    assert any(word in str(error) for word in LIMITS.split("|")), str(error)
    assert peak < 3, f"allocated {peak:.1f} MiB"
    assert cpu < MAX_CPU + CPU_MARGIN, f"used {cpu:.2f} s of CPU"


def test_conditions_that_evaluate_stay_within_bounds_too(traced: None) -> None:
    # A structure compared, not printed: nothing is built, so it may evaluate.
    error, peak, _ = _measure(lambda: evaluate(CONDITIONS["print list of lists (when)"], {}))
    assert error is None and peak < 3


def test_the_process_does_not_grow_while_hostile_templates_render() -> None:
    """Resident memory, as the kernel counts it, in a fresh process: every probe in
    turn. A probe that sets a new peak must do so within a few MiB of the memory in
    use before it (so every peak is, by induction); the process as a whole grows only
    by what the allocator keeps from one probe to the next."""
    script = """
import json, resource
from orchestrate.errors import TemplateError
from orchestrate.templates import evaluate, render
from tests.security.test_template_bounds import CONDITIONS, PROMPTS
render("{{ 'warm up' ~ (1|string) ~ ([1]|join) ~ ('%s' % 1) ~ '{}'.format(1) }}", {})
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
current = lambda: int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 2**20
start, grown = peak(), {}
probes = [(render, v, k) for k, v in PROMPTS.items()] + [(evaluate, v, k) for k, v in CONDITIONS.items()]
for work, source, name in probes:
    before_peak, before = peak(), current()
    try:
        work(source, {})
    except TemplateError:
        pass
    if peak() > before_peak:
        grown[name] = peak() - before
print(json.dumps({"probes": len(probes), "total": peak() - start, "new_peaks": grown}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["probes"] == len(PROMPTS) + len(CONDITIONS)
    assert all(mib < 4 for mib in result["new_peaks"].values()), result["new_peaks"]
    assert result["total"] < 32, result  # was 20-300 MB for a single probe before


def _workflow(step: str) -> str:
    return f"name: hostile\nsteps:\n  - {{id: a, prompt: hi}}\n  - {step}\n"


async def _run(text: str) -> tuple[dict[str, str], str | None, RecordingProvider]:
    provider = RecordingProvider()
    plan = parse_workflow(text)
    run = await run_local(plan, resolve_inputs(plan.workflow, {}), provider, store=MemoryStore())
    return {sid: s.status.value for sid, s in run.steps.items()}, run.error.type if run.error else None, provider


def _parse_or_refused(text: str) -> bool:
    try:
        parse_workflow(text)
    except SpecError as exc:
        assert "lipsum" in str(exc)  # not available at all: refused when the file is checked
        return False
    return True


@pytest.mark.parametrize("source", PROMPTS.values(), ids=PROMPTS.keys())
async def test_a_hostile_prompt_fails_its_step(source: str) -> None:
    text = _workflow("{id: b, needs: [a], prompt: " + json.dumps(source) + "}")
    if not _parse_or_refused(text):
        return
    statuses, error, provider = await _run(text)
    assert statuses == {"a": "succeeded", "b": "failed"}
    assert error == "template-error"
    assert len(provider.requests) == 1  # only a's prompt reached the model


# A root step's condition is evaluated when the run starts (in the API, for a hosted
# run): one probe of each class there; every probe after a step.
AT_START = ["str.center", "str.replace", "percent star width", "format many fields", "join separator", "list times int", "filter batch fill", "filter tojson big"]
PLACED = [(expression, "after a step") for expression in CONDITIONS.values()] + [(CONDITIONS[f"{k} (when)"], "root") for k in AT_START]


@pytest.mark.parametrize(("expression", "where"), PLACED, ids=[*CONDITIONS.keys(), *(f"{k} (when at start)" for k in AT_START)])
async def test_a_hostile_condition_fails_its_step(expression: str, where: str) -> None:
    needs = "" if where == "root" else "needs: [a], "
    text = _workflow("{id: b, " + needs + "prompt: hi, when: " + json.dumps(expression) + "}")
    if not _parse_or_refused(text) or expression == CONDITIONS["print list of lists (when)"]:
        return
    statuses, error, _ = await _run(text)
    assert statuses["b"] == "failed" and error == "template-error"
