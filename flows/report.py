"""The end-of-run summary a person reads: rows in/out per stage, rejections, training, gate, versions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SleepSummary(BaseModel):
    """What one sleep run did: its depth and outcome, each stage's numbers, the model before and after."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    run_id: str
    requested: str = Field(description="The depth asked for: light, deep or auto.")
    depth: str | None = Field(None, description="The depth it slept at (None when there was nothing to do).")
    reason: str = ""
    status: str = Field(description="running, completed, nothing-to-do, dry-run, cancelled (by a signal; resumed next "
                        "time) or failed.")
    stages: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Each finished stage's numbers.")
    resumed: list[str] = Field(default_factory=list, description="Stages an earlier attempt finished.")
    model_before: str | None = None
    model_after: str | None = None


def headline(summary: SleepSummary) -> str:
    """'sleep <depth> run <id>: <status> (<reason>)' for one sleep run's summary."""
    head = f"sleep {summary.depth or summary.requested} run {summary.run_id}: {summary.status}"
    if summary.reason:
        head += f" ({summary.reason})"
    return head


def stage_text(numbers) -> str:
    """One stage's numbers as 'key value, key value' (anything else as its string)."""
    return ", ".join(f"{k} {v}" for k, v in numbers.items()) if isinstance(numbers, dict) else str(numbers)


def model_change(summary: SleepSummary) -> str | None:
    """'v0000 -> v0001' (or 'v0000 -> v0000' when nothing was promoted); None before a model was loaded."""
    before, after = summary.model_before, summary.model_after
    return f"{before} -> {after or before}" if before else None


def summary_lines(summary: SleepSummary) -> list[str]:
    """Lines describing one sleep run's summary."""
    lines = [headline(summary)]
    for stage, numbers in summary.stages.items():
        lines.append(f"  {stage:9} {stage_text(numbers)}")
    change = model_change(summary)
    if change:
        lines.append(f"  model     {change}")
    return lines
