"""Workflow shapes the benchmarks share."""

from __future__ import annotations


def chain(n: int) -> str:
    """n steps, each reading the one before."""
    steps = ["  - {id: s0, prompt: start}"] + [f"  - {{id: s{i}, prompt: 'next {{{{ s{i - 1} }}}}'}}" for i in range(1, n)]
    return "name: chain\nsteps:\n" + "\n".join(steps) + "\n"


def fan_out(width: int) -> str:
    """A root, ``width`` steps reading it, and a join that needs them all."""
    middle = [f"  - {{id: m{i}, prompt: 'part {i} of {{{{ root }}}}'}}" for i in range(width)]
    join = "  - {id: join, prompt: 'all', needs: [" + ", ".join(f"m{i}" for i in range(width)) + "]}"
    return "name: fan\nsteps:\n  - {id: root, prompt: start}\n" + "\n".join(middle) + "\n" + join + "\n"


def independent(n: int) -> str:
    """n steps that read nothing of each other (run in parallel)."""
    steps = [f"  - {{id: s{i}, prompt: 'task {i}'}}" for i in range(n)]
    return "name: parallel\nconversation: false\nsteps:\n" + "\n".join(steps) + "\n"
