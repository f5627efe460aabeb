"""Evaluation: answer a probe set with greedy decoding, score every answer, summarize, and draw the metrics.

Scoring is `tasks.probes` (keywords matched as whole words on case- and accent-folded text, a
forbidden keyword always wins, abstentions kept apart); this module runs the model over the probes
and shapes the results into the `eval_answers` rows and the `eval_runs` metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from tasks.probes import Probe, outcome_settled, score_probe, summarize

# (label, summary key) in the order the metrics are reported and drawn.
METRICS = (
    ("recall", "recall"),
    ("generalization", "generalization"),
    ("precision", "precision"),
    ("guard pass rate", "guard_pass_rate"),
    ("control accuracy", "control_accuracy"),
)
Progress = Callable[[int, int], None]


class EvalConfig(BaseModel):
    """How probes are answered during an evaluation."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_tokens: int = Field(48, ge=1, description="Most tokens generated per answer (greedy decoding).")
    batch_size: int = Field(16, ge=1, description="Prompts decoded together (fastest of 4, 8, 16 in bench/gate.py).")
    progress_every: int = Field(16, ge=1, description="Probes answered between two progress reports; each report "
                                "lets the decoding batch drain once, so keep it a few batches long.")
    system: str | None = Field(None, description="System prompt; None uses the model's own default, as in chat.")
    probes: str | None = Field(None, description="A probe file every sleep run evaluates on the version it "
                               "started from and the one it leaves current (eval.png in the run's charts); "
                               "a relative path is taken from the home folder. None: sleeps do not evaluate.")


@dataclass(frozen=True)
class Evaluation:
    """One model's answers to one probe set: a row per probe and the summary metrics."""

    rows: list[dict]
    summary: dict
    seconds: float


def answer_rows(probes: Sequence[Probe], answers: Sequence[str]) -> list[dict]:
    """One `eval_answers` row per probe: id, kind, question, answer, verdict and the keywords that decided it."""
    if len(probes) != len(answers):
        raise ValueError(f"{len(probes)} probes but {len(answers)} answers")
    rows = []
    for probe, answer in zip(probes, answers):
        scored = score_probe(probe, answer)
        rows.append({"probe_id": scored["id"], "kind": scored["kind"], "question": scored["question"],
                     "answer": answer, "verdict": scored["outcome"], "matched": scored["matched"],
                     "forbidden_hit": scored["forbidden_hit"]})
    return rows


def summarize_rows(rows: Sequence[dict]) -> dict:
    """The summary metrics (`tasks.probes.summarize`) of `eval_answers` rows."""
    return summarize([{"kind": r["kind"], "outcome": r["verdict"], "forbidden_hit": r["forbidden_hit"]}
                      for r in rows])


def evaluate(model, tokenizer, probes: Sequence[Probe], cfg: EvalConfig = EvalConfig(), *,
             on_progress: Progress | None = None) -> Evaluation:
    """Greedy answers to every probe, scored: per-probe rows and the summary (recall, precision, …)."""
    from tasks.model.answering import answer_questions  # MLX is imported only where a model is used

    started = time.perf_counter()
    answers: list[str] = []
    for begin in range(0, len(probes), cfg.progress_every):
        chunk = probes[begin:begin + cfg.progress_every]
        answers += answer_questions(model, tokenizer, [p.question for p in chunk], max_tokens=cfg.max_tokens,
                                    batch_size=cfg.batch_size, system=cfg.system,
                                    stop_when=lambda i, text, chunk=chunk: outcome_settled(chunk[i], text))
        if on_progress is not None:
            on_progress(len(answers), len(probes))
    rows = answer_rows(probes, answers)
    return Evaluation(rows=rows, summary=summarize_rows(rows), seconds=time.perf_counter() - started)


def metric_cells(summary: dict) -> dict[str, str]:
    """Each metric as text with the counts behind it, e.g. 'recall': '0.250 (3/12)'; 'n/a' without probes."""
    counts = summary["counts"]
    memory = {o: counts["recall"][o] + counts["generalization"][o] for o in ("correct", "wrong")}
    fractions = {
        "recall": (counts["recall"]["correct"], counts["recall"]["total"]),
        "generalization": (counts["generalization"]["correct"], counts["generalization"]["total"]),
        "precision": (memory["correct"], memory["correct"] + memory["wrong"]),
        "guard_pass_rate": (summary["guard_passed"], counts["guard"]["total"]),
        "control_accuracy": (counts["control"]["correct"], counts["control"]["total"]),
    }
    out = {}
    for _, key in METRICS:
        num, den = fractions[key]
        out[key] = "n/a" if summary[key] is None else f"{summary[key]:.3f} ({num}/{den})"
    abstained = sum(c["abstain"] for c in counts.values())
    out["abstentions"] = f"{abstained} of {summary['probes']}"
    return out
