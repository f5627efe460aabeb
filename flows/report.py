"""The end-of-run summary a person reads: rows in/out per stage, rejections, training, gate, versions."""

from __future__ import annotations


def summary_lines(summary: dict) -> list[str]:
    """Lines describing one sleep run's summary dict."""
    head = f"sleep {summary.get('depth') or summary.get('requested')} run {summary['run_id']}: {summary['status']}"
    if summary.get("reason"):
        head += f" ({summary['reason']})"
    lines = [head]
    for stage, numbers in summary.get("stages", {}).items():
        text = ", ".join(f"{k} {v}" for k, v in numbers.items()) if isinstance(numbers, dict) else str(numbers)
        lines.append(f"  {stage:9} {text}")
    before, after = summary.get("model_before"), summary.get("model_after")
    if before:
        lines.append(f"  model     {before} -> {after or before}")
    return lines
