"""A small but real sleep configuration for tests that run whole sleeps in subprocesses: one epoch, one
phrasing per fact, few anchors, a 12-question benchmark and 20 lines of general text, so a whole sleep
(train, gate, fuse) takes ~1.5 minutes on 2 busy cores."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tasks" / "data"
CONFIG = """\
[train]
light_epochs = 1
[mixing]
paraphrases = 1
anchor_ratio = 0.25
[gate]
benchmark = "{benchmark}"
general_text = "{text}"
max_tokens = 24
smoke_questions = 2
"""


SMALL_GATE = """\
[gate]
benchmark = "{benchmark}"
general_text = "{text}"
max_tokens = 24
smoke_questions = 2
"""


def small_gate_inputs(inputs: Path) -> tuple[Path, Path]:
    """The first 12 benchmark questions and 20 lines of general text, written into the folder `inputs`."""
    inputs.mkdir(parents=True, exist_ok=True)
    benchmark, text = inputs / "benchmark.jsonl", inputs / "general.txt"
    benchmark.write_text("".join((DATA / "benchmark.jsonl").read_text().splitlines(keepends=True)[:12]))
    text.write_text("".join((DATA / "general_text.txt").read_text().splitlines(keepends=True)[:20]))
    return benchmark, text


def small_gate(inputs: Path) -> str:
    """The `[gate]` section of the small configuration, its inputs written into the folder `inputs`."""
    benchmark, text = small_gate_inputs(inputs)
    return SMALL_GATE.format(benchmark=benchmark, text=text)


def write_small_config(config_file: Path, inputs: Path, extra: str = "") -> None:
    """Write the small configuration to config_file, its trimmed gate inputs into the folder `inputs`."""
    benchmark, text = small_gate_inputs(inputs)
    config_file.write_text(extra + CONFIG.format(benchmark=benchmark, text=text))
