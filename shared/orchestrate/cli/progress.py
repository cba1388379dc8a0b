"""Live progress of a run in the terminal, driven by the run's event log
(the same events the API and Realtime serve)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ..engine.records import Event

_STYLE = {
    "pending": ("·", "dim"),
    "queued": ("○", "cyan"),
    "running": ("", "yellow"),
    "retrying": ("↻", "yellow"),
    "waiting": ("⏸", "magenta"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("–", "dim"),
    "cancelled": ("⊘", "dim"),
    "reused": ("↺", "green"),
}


@dataclass
class _Row:
    status: str = "pending"
    attempt: int = 0
    started: float | None = None
    elapsed: float | None = None
    tokens: int | None = None
    note: str = ""


@dataclass
class ProgressView:
    """Folds events into per-step rows and renders them."""

    title: str
    step_ids: list[str]
    rows: dict[str, _Row] = field(init=False)
    run_status: str = "queued"
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.rows = {sid: _Row() for sid in self.step_ids}

    def apply(self, event: Event) -> None:
        if event.step_id is None:
            if event.type.startswith("run."):
                self.run_status = event.type.removeprefix("run.")
            return
        row = self.rows.setdefault(event.step_id, _Row())
        kind = event.type.removeprefix("step.")
        kind = "running" if kind == "started" else kind
        data: dict[str, Any] = event.data
        if kind == "running":
            row.started, row.attempt = time.monotonic(), data.get("attempt", row.attempt)
        if kind in ("succeeded", "failed", "retrying", "cancelled") and row.started is not None:
            row.elapsed = time.monotonic() - row.started
        if kind == "succeeded":
            row.tokens = (data.get("usage") or {}).get("total_tokens")
        if kind in ("failed", "retrying"):
            row.note = (data.get("error") or {}).get("message", "")
        if kind == "skipped":
            row.note = data.get("reason", "")
        if kind == "reused":  # a rerun's step: the source run's answer, no call
            row.note = "edited answer" if data.get("edited") else f"from run {str(data.get('source_run_id') or '')[:8]}".rstrip()
        if kind == "waiting":
            row.note = str(data.get("message") or (f"until {data['until']}" if data.get("until") else "waiting for an answer"))
        row.status = kind

    def line(self, event: Event) -> str:
        """A plain one-line rendering, for logs and non-terminals."""
        at = time.monotonic() - self.started
        what = event.type if event.step_id is None else f"{event.step_id}: {event.type.removeprefix('step.')}"
        note = self.rows[event.step_id].note if event.step_id in self.rows and event.type in ("step.failed", "step.retrying", "step.skipped", "step.reused", "step.waiting") else ""
        return f"[{at:6.2f}s] {what}" + (f" ({note})" if note else "")

    def __rich__(self) -> Group:
        table = Table(title=self.title, title_justify="left", expand=False, box=None, padding=(0, 1))
        table.add_column("", width=1)
        table.add_column("step")
        table.add_column("status")
        table.add_column("time", justify="right")
        table.add_column("tokens", justify="right")
        table.add_column("")
        now = time.monotonic()
        for sid, row in self.rows.items():
            icon, style = _STYLE.get(row.status, ("?", ""))
            mark: Any = Spinner("dots", style="yellow") if row.status == "running" else Text(icon, style=style)
            elapsed = row.elapsed if row.elapsed is not None else (now - row.started if row.started and row.status == "running" else None)
            status = row.status + (f" (attempt {row.attempt})" if row.attempt > 1 else "")
            table.add_row(
                mark,
                sid,
                Text(status, style=style),
                f"{elapsed:.1f}s" if elapsed is not None else "",
                str(row.tokens) if row.tokens is not None else "",
                Text(row.note[:60], style="dim"),
            )
        return Group(table)


class Progress:
    """Shows a live table on a terminal, or one line per event elsewhere."""

    def __init__(self, console: Console, view: ProgressView, *, quiet: bool = False) -> None:
        self.console = console
        self.view = view
        self.quiet = quiet
        self._live = Live(view, console=console, refresh_per_second=10, transient=False) if console.is_terminal and not quiet else None

    def __enter__(self) -> Progress:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        self.view.apply(event)
        if self._live is not None:
            self._live.refresh()
        elif not self.quiet:
            self.console.print(self.view.line(event), highlight=False, markup=False)
