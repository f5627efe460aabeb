"""The end-of-run summary a person reads: rows in/out per stage, rejections, training, gate, versions."""

from __future__ import annotations


def headline(summary: dict) -> str:
    """'sleep <depth> run <id>: <status> (<reason>)' for one sleep run's summary dict."""
    head = f"sleep {summary.get('depth') or summary.get('requested')} run {summary['run_id']}: {summary['status']}"
    if summary.get("reason"):
        head += f" ({summary['reason']})"
    return head


def stage_text(numbers) -> str:
    """One stage's numbers as 'key value, key value' (anything else as its string)."""
    return ", ".join(f"{k} {v}" for k, v in numbers.items()) if isinstance(numbers, dict) else str(numbers)


def model_change(summary: dict) -> str | None:
    """'v0000 -> v0001' (or 'v0000 -> v0000' when nothing was promoted); None before a model was loaded."""
    before, after = summary.get("model_before"), summary.get("model_after")
    return f"{before} -> {after or before}" if before else None


def summary_lines(summary: dict) -> list[str]:
    """Lines describing one sleep run's summary dict."""
    lines = [headline(summary)]
    for stage, numbers in summary.get("stages", {}).items():
        lines.append(f"  {stage:9} {stage_text(numbers)}")
    change = model_change(summary)
    if change:
        lines.append(f"  model     {change}")
    return lines
