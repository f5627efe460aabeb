"""Live progress of a sleep run: the flow reports each stage's start and end and each training step; the CLI draws it.

The flow calls `report(...)`; whoever is `listening` (the CLI's view, a test) receives an Event. With
nobody listening a report costs nothing, so flows run the same under a scheduler, a worker or a test.

Two views: `LiveView` redraws a table of stages with a progress bar for training on a terminal
(rich), `LineView` prints a line per finished stage and per tenth of training for logs and pipes.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, TextIO

STAGES = ("ingest", "model", "score", "extract", "firewall", "mix", "train", "gate", "fuse", "eval")
STATES = ("pending", "running", "done", "resumed", "skipped", "failed")
MARKS = {"pending": "·", "running": "…", "done": "✓", "resumed": "✓", "skipped": "–", "failed": "✗"}


@dataclass(frozen=True)
class Event:
    """One stage's news: a new state (with its numbers as text), or a step of `total` while running."""

    stage: str
    state: str  # one of STATES, or "step"
    text: str = ""
    done: int | None = None
    total: int | None = None


_listeners: list[Callable[[Event], None]] = []


@contextmanager
def listening(callback: Callable[[Event], None]) -> Iterator[None]:
    """Send every report made inside the block to `callback` (in the reporting thread)."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def report(stage: str, state: str, text: str = "", done: int | None = None, total: int | None = None) -> None:
    """Tell the listeners (if any) about a stage: report('train', 'step', 'loss 1.23', done=5, total=90)."""
    if state not in STATES and state != "step":
        raise ValueError(f"unknown progress state {state!r}; use one of {STATES + ('step',)}")
    if _listeners:
        event = Event(stage, state, text, done, total)
        for callback in list(_listeners):
            callback(event)


@dataclass
class StageStatus:
    state: str = "pending"
    text: str = ""
    done: int | None = None
    total: int | None = None
    started: float | None = None
    seconds: float | None = None


class Board:
    """The state of every stage, folded from events; both views draw from it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.stages: dict[str, StageStatus] = {s: StageStatus() for s in STAGES}

    def apply(self, event: Event) -> StageStatus:
        st = self.stages.setdefault(event.stage, StageStatus())
        now = self.clock()
        if event.state == "running" or (event.state == "step" and st.started is None):
            st.started = now
        elif st.started is not None and st.seconds is None and event.state in ("done", "failed"):
            st.seconds = now - st.started
        st.state = "running" if event.state == "step" else event.state
        if event.text:
            st.text = event.text
        if event.done is not None:
            st.done, st.total = event.done, event.total
        return st


def bar_text(done: int, total: int, width: int = 20) -> str:
    """'[#######.............] 35%' for plain-text logs."""
    frac = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = round(frac * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {frac:4.0%}"


class LineView:
    """A line per stage that finishes and per tenth of training: for logs, pipes and cron mail."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.board = Board()
        self._last_tenth: dict[str, int] = {}

    def update(self, event: Event) -> None:
        st = self.board.apply(event)
        if event.state == "step" and st.total:
            tenth = (10 * (st.done or 0)) // st.total
            if tenth > self._last_tenth.get(event.stage, -1):
                self._last_tenth[event.stage] = tenth
                self._say(f"{event.stage:9} {bar_text(st.done or 0, st.total)} {st.done}/{st.total} {st.text}")
        elif event.state in ("done", "resumed", "skipped", "failed"):
            took = f" ({st.seconds:.1f} s)" if st.seconds is not None else ""
            self._say(f"{event.stage:9} {MARKS[event.state]} {event.state}{took}: {st.text}".rstrip(": "))

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def __enter__(self) -> "LineView":
        return self

    def __exit__(self, *exc) -> None:
        return None


class LiveView:
    """A live table of stages, redrawn in place on a terminal, with a progress bar while training."""

    def __init__(self, stream: TextIO | None = None, *, console=None):
        from rich.console import Console
        from rich.live import Live

        self.board = Board()
        self.console = console or Console(file=stream or sys.stderr)
        self.live = Live(self.renderable(), console=self.console, refresh_per_second=4, transient=False)

    def renderable(self):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(title="slowwave sleep", title_justify="left", show_edge=False, pad_edge=False)
        for column in ("stage", "", "progress", "numbers", "time"):
            table.add_column(column, no_wrap=column != "numbers")
        for name, st in self.board.stages.items():
            if st.total:
                bar = ProgressBar(total=st.total, completed=st.done or 0, width=24)
                progress = Table.grid(padding=(0, 1))
                progress.add_row(bar, f"{st.done}/{st.total}")
            else:
                progress = ""
            elapsed = st.seconds if st.seconds is not None else (
                self.board.clock() - st.started if st.started is not None and st.state == "running" else None)
            style = {"failed": "red", "running": "bold", "pending": "dim"}.get(st.state, "")
            table.add_row(name, MARKS.get(st.state, "?"), progress, st.text,
                          "" if elapsed is None else f"{elapsed:.0f} s", style=style)
        return table

    def update(self, event: Event) -> None:
        self.board.apply(event)
        self.live.update(self.renderable())

    def __enter__(self) -> "LiveView":
        self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.live.update(self.renderable())
        self.live.stop()


def view_for(stream: TextIO) -> LineView | LiveView:
    """The live table on a terminal, plain lines anywhere else."""
    return LiveView(stream) if stream.isatty() else LineView(stream)


@contextmanager
def console_logs_at(level: int) -> Iterator[None]:
    """Raise Prefect's console handlers to `level` inside the block (the API still receives every log)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for name in ("", "prefect") for h in logging.getLogger(name).handlers
                if isinstance(h, PrefectConsoleHandler)]
    before = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(max(h.level, level))
    try:
        yield
    finally:
        for h, lvl in zip(handlers, before):
            h.setLevel(lvl)


@contextmanager
def shown(stream: TextIO | None = None) -> Iterator[LineView | LiveView]:
    """Draw the progress of whatever runs inside the block on `stream` (default stderr). On a terminal the
    live table replaces Prefect's per-line console logs (warnings still show; the API keeps every log)."""
    view = view_for(stream or sys.stderr)
    quiet = console_logs_at(logging.WARNING if isinstance(view, LiveView) else logging.NOTSET)
    with view, listening(view.update), quiet:
        yield view
