"""A sleep run's Prefect artifacts: the summary, accepted pairs, rejections, training progress, charts.

Each function publishes only inside a flow or task run and returns the artifact's id; anywhere else
(a plain script, a pure test) it does nothing and returns None, so callers need no Prefect checks.
Keyed artifacts also appear on the UI's Artifacts page, one collection per key, a version per run.
"""

from __future__ import annotations

import base64
from pathlib import Path
from uuid import UUID

import pyarrow as pa

from flows.report import SleepSummary, headline, model_change, stage_text

SUMMARY_KEY = "sleep-summary"
PAIRS_KEY = "sleep-pairs"
REJECTIONS_KEY = "sleep-rejections"
CHARTS_KEY = "sleep-charts"
PROGRESS_KEY = "sleep-training-progress"
MAX_TABLE_ROWS = 500  # a table artifact holds the first this-many rows; the warehouse keeps them all
EXCERPT_CHARS = 160  # question/answer text in the rejections table is cut here (after masking)
MAX_EMBED_BYTES = 400_000  # a PNG up to this size is embedded as a data URI; a larger one is only linked
CHARTS = (("loss.png", "Training loss"), ("gate.png", "Gate: before and after"), ("eval.png", "Evaluation"))


def in_run() -> bool:
    """True inside a Prefect flow or task run (where artifacts have a run to belong to)."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _cell(value) -> str:
    """A value as one markdown table cell (pipes escaped, newlines flattened)."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: tuple[str, str], rows: list[tuple]) -> list[str]:
    return [f"| {header[0]} | {header[1]} |", "|---|---|", *(f"| {_cell(a)} | {_cell(b)} |" for a, b in rows)]


def summary_markdown(summary: SleepSummary) -> str:
    """The run summary as markdown: numbers per stage, rejections by reason, training, gate, model versions."""
    stages = summary.stages
    lines = [f"# {_cell(headline(summary))}", "", *_table(("stage", "numbers"),
                                                          [(s, stage_text(n)) for s, n in stages.items()])]
    firewall = stages.get("firewall", {})
    rejected = [(k.removeprefix("rejected:"), v) for k, v in firewall.items() if k.startswith("rejected:")]
    if firewall:
        lines += ["", "## Rejected by reason", ""]
        lines += _table(("reason", "pairs"), sorted(rejected, key=lambda kv: -kv[1])) if rejected else ["none"]
    if "train" in stages:
        train = stages["train"]
        lines += ["", "## Training", "", *_table(("training", "value"), [
            ("adapter", train.get("adapter")), ("steps", train.get("steps")),
            ("loss (first epoch -> final)", train.get("loss")), ("tokens/s", train.get("tokens/s"))])]
    if "gate" in stages:
        gate = stages["gate"]
        lines += ["", f"## Gate: {gate.get('decision')}", "", *_table(("measure", "value"), [
            ("benchmark ratio (after / before)", gate.get("benchmark_ratio")),
            ("perplexity drift on general text", gate.get("ppl_drift")),
            ("answers the parent got right, wrong now", gate.get("regressions")),
            *([("... by category", gate["regressions_by_category"])] if gate.get("regressions_by_category") else []),
            ("new-fact recall (before -> after)", gate.get("recall"))])]
        for label in ("reasons", "warnings"):
            if gate.get(label):
                lines += ["", f"**{label.capitalize()}:** {_cell(gate[label])}"]
    change = model_change(summary)
    if change:
        lines += ["", "## Model", "", f"`{change}`"]
    return "\n".join(lines) + "\n"


def publish_summary(summary: SleepSummary) -> UUID | None:
    """A markdown artifact with the run's summary (see summary_markdown)."""
    if not in_run():
        return None
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(summary_markdown(summary), key=SUMMARY_KEY,
                                    description=f"sleep run {summary.run_id}: {summary.status}")


def pair_rows(pairs: pa.Table, exchanges: pa.Table, firewall=None) -> list[dict]:
    """One row per accepted pair: question, answer (secret-masked, defensively), grounding and the session:turn
    it came from."""
    from tasks.firewall import masker

    mask = masker(firewall)
    where = {e: f"{s}:{t}" for e, s, t in zip(*(exchanges[c].to_pylist() for c in ("exchange_id", "session_id", "turn")))}
    return [{"question": mask(p["question"]), "answer": mask(p["answer"]), "grounding": round(p["grounding"], 3),
             "source": where.get(p["exchange_id"], f"exchange {p['exchange_id']} (not loaded)"), "pair_id": p["pair_id"]}
            for p in pairs.select(["pair_id", "exchange_id", "question", "answer", "grounding"]).to_pylist()]


def _description(what: str, shown: int, total: int) -> str:
    return f"{what}: {total}" if shown == total else f"{what}: first {shown} of {total} (all are in the warehouse)"


def publish_pairs(pairs: pa.Table, exchanges: pa.Table, firewall=None) -> UUID | None:
    """A table artifact of tonight's accepted pairs (first MAX_TABLE_ROWS), secrets masked."""
    if not in_run():
        return None
    from prefect.artifacts import create_table_artifact

    rows = pair_rows(pairs.slice(0, MAX_TABLE_ROWS), exchanges, firewall)
    return create_table_artifact(rows, key=PAIRS_KEY,
                                 description=_description("accepted pairs", len(rows), pairs.num_rows))


def excerpt(text: str, firewall=None, limit: int = EXCERPT_CHARS) -> str:
    """text with secrets masked (firewall config, else its defaults), then cut to `limit` characters."""
    from tasks.firewall import masker

    # Mask before cutting: a cut secret could fall under the detector's minimum length and slip through.
    masked = masker(firewall)(text)
    return masked if len(masked) <= limit else masked[:limit - 1] + "…"


def rejection_rows(rejections: pa.Table, firewall=None) -> list[dict]:
    """One row per rejection: reason, detail and masked, shortened question and answer."""
    return [{"reason": r["reason"], "detail": excerpt(r["detail"], firewall),
             "question": excerpt(r["question"], firewall), "answer": excerpt(r["answer"], firewall)}
            for r in rejections.select(["reason", "detail", "question", "answer"]).to_pylist()]


def publish_rejections(rejections: pa.Table, firewall=None) -> UUID | None:
    """A table artifact of tonight's rejections; text is secret-masked again here, defensively."""
    if not in_run():
        return None
    from prefect.artifacts import create_table_artifact

    rows = rejection_rows(rejections.slice(0, MAX_TABLE_ROWS), firewall)
    return create_table_artifact(rows, key=REJECTIONS_KEY,
                                 description=_description("rejected candidates", len(rows), rejections.num_rows))


class TrainingProgress:
    """A Prefect progress artifact for `total` training steps; update(step) moves it (no-op outside a run)."""

    def __init__(self, total: int, description: str | None = None, min_delta: float = 5.0):
        self.total, self.min_delta = total, min_delta
        self.progress = 0.0 if total > 0 else 100.0
        self.artifact_id: UUID | None = None
        if in_run():
            from prefect.artifacts import create_progress_artifact

            self.artifact_id = create_progress_artifact(
                self.progress, key=PROGRESS_KEY, description=description or f"LoRA training, {total} steps")

    def update(self, step: int) -> bool:
        """Set the progress to step/total; publish when it crossed a multiple of min_delta points (so 100 too)."""
        progress = 100.0 if self.total <= 0 else min(100.0, max(0.0, 100.0 * step / self.total))
        if progress // self.min_delta <= self.progress // self.min_delta:
            return False
        self.progress = progress
        if self.artifact_id is None:
            return False
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self.artifact_id, progress)
        return True


def progress_artifact(total: int, description: str | None = None) -> TrainingProgress:
    """A training-progress artifact at 0% (100% when there are no steps); call .update(step) as steps finish."""
    return TrainingProgress(total, description)


def charts_markdown(run_dir: Path) -> str | None:
    """Markdown showing the run's charts (small PNGs inline as data URIs) with their paths; None without any."""
    run_dir = Path(run_dir)
    parts = []
    for name, title in CHARTS:
        png = run_dir / name
        if not png.is_file():
            continue
        size = png.stat().st_size
        parts += [f"## {title}", "", f"File: [`{png}`]({png.resolve().as_uri()}) ({size:,} bytes)", ""]
        if size <= MAX_EMBED_BYTES:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            parts += [f"![{title}](data:image/png;base64,{data})", ""]
        else:
            parts += [f"Too large to show inline ({size:,} bytes > {MAX_EMBED_BYTES:,}); open the file above.", ""]
    return "\n".join([f"# Charts of run {run_dir.name}", "", *parts]) if parts else None


def publish_images(run_dir: Path) -> UUID | None:
    """A markdown artifact with the run's loss curve (runs/<run>/loss.png) and eval chart (eval.png) if present."""
    if not in_run():
        return None
    markdown = charts_markdown(run_dir)
    if markdown is None:
        return None
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(markdown, key=CHARTS_KEY, description=f"charts of run {Path(run_dir).name}")
