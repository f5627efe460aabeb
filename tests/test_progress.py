"""The sleep run's live progress: events folded into a board, drawn as lines (logs) or a live table (terminal)."""

from __future__ import annotations

import io
import logging

import pytest

from flows import progress
from flows.progress import Board, Event, LineView, LiveView, bar_text, listening, report


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reports_reach_listeners_only_inside_the_block():
    seen: list[Event] = []
    report("score", "running")  # nobody listening: nothing happens, nothing fails
    with listening(seen.append):
        report("score", "done", "exchanges 40, retained 12")
        report("train", "step", "loss 2.100", done=3, total=90)
    report("gate", "running")
    assert seen == [Event("score", "done", "exchanges 40, retained 12"),
                    Event("train", "step", "loss 2.100", 3, 90)]
    assert progress._listeners == []


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError, match="unknown progress state 'finished'"):
        report("score", "finished")


def test_board_times_a_stage_and_keeps_its_numbers():
    clock = Clock()
    board = Board(clock)
    board.apply(Event("score", "running"))
    clock.now += 4.5
    st = board.apply(Event("score", "done", "exchanges 40"))
    assert (st.state, st.text, st.seconds) == ("done", "exchanges 40", 4.5)
    board.apply(Event("train", "running"))
    st = board.apply(Event("train", "step", "loss 1.5", done=30, total=120))
    assert (st.state, st.done, st.total, st.text) == ("running", 30, 120, "loss 1.5")
    assert board.stages["gate"].state == "pending" and list(board.stages)[:3] == ["ingest", "model", "score"]


def test_bar_text():
    assert bar_text(0, 10) == "[....................]   0%"
    assert bar_text(5, 10, width=10) == "[#####.....]  50%"
    assert bar_text(12, 10, width=4) == "[####] 100%"


def test_line_view_prints_finished_stages_and_each_tenth_of_training():
    out = io.StringIO()
    view = LineView(out)
    with view, listening(view.update):
        report("score", "running")
        report("score", "done", "exchanges 40, retained 12")
        for step in range(1, 101):
            report("train", "step", f"loss {3 - step / 50:.3f}", done=step, total=100)
        report("train", "done", "steps 100")
        report("fuse", "skipped", "gate rejected the adapter")
        report("gate", "failed", "ModelError: boom")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("score     ✓ done (") and lines[0].endswith("exchanges 40, retained 12")
    bars = [line for line in lines if line.startswith("train") and "[" in line]
    assert len(bars) == 11  # 1% .. 100% crosses each tenth once
    assert bars[-1] == f"train     {bar_text(100, 100)} 100/100 loss 1.000"
    assert "fuse      – skipped: gate rejected the adapter" in lines
    assert lines[-1] == "gate      ✗ failed: ModelError: boom"


def test_live_view_draws_a_table_with_a_training_bar():
    from rich.console import Console

    console = Console(file=io.StringIO(), record=True, width=140, force_terminal=True, color_system=None)
    view = LiveView(console=console)
    with view, listening(view.update):
        report("ingest", "done", "files 12, exchanges_added 40")
        report("train", "running")
        report("train", "step", "loss 1.234", done=45, total=90)
        text = console.export_text(clear=False)
    table = view.renderable()
    console.print(table)
    drawn = console.export_text()
    train = next(line for line in drawn.splitlines() if line.lstrip().startswith("train"))
    assert "45/90" in train and "loss 1.234" in train and "…" in train
    ingest = next(line for line in drawn.splitlines() if line.lstrip().startswith("ingest"))
    assert "✓" in ingest and "exchanges_added 40" in ingest
    assert "slowwave sleep" in text or "slowwave sleep" in drawn


def test_view_for_picks_lines_when_not_a_terminal():
    assert isinstance(progress.view_for(io.StringIO()), LineView)


def test_console_logs_are_quieted_and_restored():
    from prefect.logging.handlers import PrefectConsoleHandler

    root = logging.getLogger()
    handler = PrefectConsoleHandler(stream=io.StringIO(), level=logging.INFO)
    root.addHandler(handler)
    try:
        with progress.console_logs_at(logging.WARNING):
            assert handler.level == logging.WARNING
        assert handler.level == logging.INFO
        with progress.console_logs_at(logging.DEBUG):  # never lowers a level
            assert handler.level == logging.INFO
    finally:
        root.removeHandler(handler)
