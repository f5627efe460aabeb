"""Stage 6, benchmark gating: measure a model before and after training, then approve or reject the adapter.

Two signals of forgetting (DESIGN.md): the benchmark score ratio s_post / s_pre (the source paper
approves iff ≥ 0.5) and the relative perplexity drift on general text (the forgetting study: a rise
above +20% warns, above +50% rejects). New-fact recall is reported and can be made a requirement.
`measure` is deterministic (greedy decoding, fixed windows), so the caller can cache the base
model's measurement per model version, keyed on `inputs_sha256`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from storage.errors import InputError, ModelError
from tasks.probes import Probe, load_benchmark, outcome_settled, score_probe, summarize

DATA = Path(__file__).parent / "data"


class GateConfig(BaseModel):
    """When a trained adapter may become the next model version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_benchmark_ratio: float = Field(0.5, gt=0, le=1, description="τ: reject when benchmark score after ÷ "
                                       "before is below this (source paper: 0.5).")
    ppl_warn: float = Field(0.20, ge=0, description="Warn when perplexity on general text rises by more than this "
                            "fraction (forgetting study: +20%).")
    ppl_reject: float = Field(0.50, ge=0, description="Reject when perplexity on general text rises by more than "
                              "this fraction (forgetting study: +50%).")
    max_regressions: int | None = Field(None, ge=0, description="Reject when more benchmark questions that the "
                                        "parent answered right are answered wrong with the adapter than this many; "
                                        "None: no count limit (max_regression_share still applies).")
    max_regression_share: float | None = Field(0.2, ge=0, le=1, description="Reject when more than this share of "
                                               "the benchmark answers the parent got right are wrong with the "
                                               "adapter, whatever it gained elsewhere (the ratio lets new right "
                                               "answers hide broken ones; this does not). Measured on the default "
                                               "135M model (docs/RESULTS.md): any LoRA night, even one on the "
                                               "replay material alone, broke 15-24% of its right answers, most of "
                                               "them near ties; a count of 0 rejects every night. None: off.")
    min_new_fact_recall: float | None = Field(None, ge=0, le=1, description="Reject when recall of the night's new "
                                              "facts after training is below this; None only reports it.")
    benchmark: Path = Field(DATA / "benchmark.jsonl", description="General questions with expected keywords (JSONL).")
    general_text: Path = Field(DATA / "general_text.txt", description="Plain text whose perplexity measures drift.")
    max_tokens: int = Field(48, ge=1, description="Most tokens generated per benchmark or new-fact answer.")
    batch_size: int = Field(16, ge=1, description="Prompts decoded together (fastest of 4, 8, 16 in bench/gate.py).")
    smoke_questions: int = Field(5, ge=1, description="Benchmark questions a fused model must still answer "
                                 "(at least one right) before `current` switches to it.")
    ppl_window: int = Field(512, ge=16, description="Tokens per perplexity window (stride = window: no overlap).")

    @model_validator(mode="after")
    def _warn_below_reject(self) -> GateConfig:
        if self.ppl_warn > self.ppl_reject:
            raise ValueError(f"ppl_warn ({self.ppl_warn}) must not exceed ppl_reject ({self.ppl_reject})")
        return self


class Measurement(BaseModel):
    """What `measure` found for one model: benchmark score (overall, per category, per item), perplexity on the
    general text, and recall/precision of the night's facts (None when none were asked)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    benchmark_score: float = Field(description="Share of benchmark questions answered right (nan: no items).")
    ppl: float = Field(description="Perplexity on the general text.")
    benchmark_items: int = 0
    benchmark_correct: int = 0
    benchmark_by_category: dict[str, dict[str, float]] = Field(default_factory=dict)
    benchmark_outcomes: list[dict] = Field(default_factory=list, description="One scored answer per item.")
    nll: float | None = None
    ppl_tokens: int | None = None
    new_facts: int = 0
    recall: float | None = None
    precision: float | None = None
    new_fact_outcomes: list[dict] = Field(default_factory=list)
    inputs_sha256: str | None = Field(None, description="What it was measured on besides the model "
                                      "(inputs_sha256): only equal hashes are compared.")
    seconds: dict[str, float] = Field(default_factory=dict)

    def with_new_facts(self, numbers: dict) -> Measurement:
        """This measurement with the new-fact numbers of `measure_new_facts` (the cached part stays)."""
        return self.model_copy(update=numbers)


class GateDecision(BaseModel):
    """The gate's verdict on one adapter: approved or not, every reason and warning, and the measurements behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    approved: bool
    reasons: list[str] = Field(description="Why it was rejected (empty when approved).")
    warnings: list[str] = Field(description="What a person should look at even though it passed.")
    benchmark_pre: float = Field(description="Benchmark score of the parent version.")
    benchmark_post: float = Field(description="Benchmark score with the adapter.")
    benchmark_ratio: float = Field(description="benchmark_post / benchmark_pre (1.0 when nothing was right before).")
    ppl_pre: float = Field(description="Perplexity of the parent version on the general text.")
    ppl_post: float = Field(description="Perplexity with the adapter on the general text.")
    ppl_drift: float = Field(description="ppl_post / ppl_pre - 1.")
    recall_pre: float | None = Field(description="Held-out recall of the night's facts before (None: no facts).")
    recall_post: float | None = Field(description="Held-out recall of the night's facts after.")
    precision_post: float | None = Field(description="Precision of the answers to those facts after.")
    benchmark_lost: list[str] = Field(description="Benchmark questions right before and wrong after.")
    benchmark_gained: list[str] = Field(description="Benchmark questions wrong before and right after.")
    regressions_by_category: dict[str, int] = Field(default_factory=dict, description="benchmark_lost counted per "
                                                    "benchmark category (every category measured, 0 included).")
    thresholds: dict[str, float | None] = Field(description="The gate settings the decision was made with.")


def load_gate_inputs(cfg: GateConfig) -> tuple[list[Probe], str]:
    """The benchmark items and general text the config names, checked."""
    benchmark = load_benchmark(cfg.benchmark)
    try:
        text = cfg.general_text.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{cfg.general_text}: cannot read the general text ({exc}); set gate.general_text") from None
    if len(text.split()) < 100:
        raise InputError(f"{cfg.general_text}: {len(text.split())} words; perplexity drift needs at least 100")
    return benchmark, text


def inputs_sha256(benchmark: Sequence[Probe], general_text: str, *, max_tokens: int, window: int) -> str:
    """Hash of everything a measurement depends on besides the model: equal hashes → comparable numbers."""
    items = [b.model_dump(include={"id", "category", "question", "expected", "forbidden"}) for b in benchmark]
    blob = json.dumps([items, general_text, max_tokens, window, EARLY_STOP], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _new_fact_probes(new_facts: Sequence[dict]) -> list[Probe]:
    probes = []
    for i, fact in enumerate(new_facts):
        expected = fact.get("expected")
        expected = [expected] if isinstance(expected, str) else list(expected or [])
        if not fact.get("question") or not expected:
            raise ValueError(f"new fact #{i} needs a question and a non-empty expected answer, got {fact!r}")
        probes.append(Probe(id=fact.get("id", f"new-{i}"), kind="recall", question=fact["question"],
                            expected=tuple(expected), forbidden=tuple(fact.get("forbidden", []))))
    return probes


EARLY_STOP = "a reply ends once its outcome is settled (tasks.probes.outcome_settled)"  # in inputs_sha256


def _settled(items: Sequence[Probe]):
    return lambda i, text: outcome_settled(items[i], text)


def _score(items: Sequence[Probe], answers: Sequence[str]) -> list[dict]:
    return [score_probe(item, answer) for item, answer in zip(items, answers)]


def _recall_numbers(outcomes: list[dict]) -> dict:
    summary = summarize(outcomes)  # every outcome here is of kind "recall"
    return {"new_facts": len(outcomes), "recall": summary["recall"], "precision": summary["precision"],
            "new_fact_outcomes": outcomes}


def measure_new_facts(model, tokenizer, new_facts: Sequence[dict], *, max_tokens: int = 48,
                      batch_size: int = 8) -> dict:
    """Recall and precision of new facts ({question, expected}) for a model that `measure` was cached for."""
    from tasks.model.answering import answer_questions  # MLX is imported only where a model is used

    probes = _new_fact_probes(new_facts)
    answers = answer_questions(model, tokenizer, [p.question for p in probes], max_tokens=max_tokens,
                               batch_size=batch_size, stop_when=_settled(probes))
    return _recall_numbers(_score(probes, answers))


def measure(model, tokenizer, *, benchmark: Sequence[Probe], general_text: str, new_facts: Sequence[dict] = (),
            max_tokens: int = 48, batch_size: int = 8, window: int = 512,
            adapted_layers: int | None = None) -> Measurement:
    """Benchmark score (overall, per category, per item), perplexity on general text, new-fact recall/precision.

    `adapted_layers`: the number of last blocks a LoRA adapter covers (the candidate's, or the one the parent's
    candidate will have); the general text's hidden states below them are kept across runs by those blocks'
    weights (tasks.prefix.FrozenStates), so a candidate's perplexity runs only the adapted blocks."""
    from tasks.model.answering import answer_questions, perplexity
    from tasks.prefix import FrozenStates

    facts = _new_fact_probes(new_facts)
    started = time.perf_counter()
    # One batched call for both sets: the decoding batch stays full until the very end.
    asked = [*benchmark, *facts]
    answers = answer_questions(model, tokenizer, [q.question for q in asked], max_tokens=max_tokens,
                               batch_size=batch_size, stop_when=_settled(asked))
    answered = time.perf_counter()
    frozen = None
    if adapted_layers:
        probe = list(tokenizer.encode(general_text[:400], add_special_tokens=False))[:16]
        frozen = FrozenStates.build(model, adapted_layers, probe)
    ppl = perplexity(model, tokenizer, general_text, window=window, stride=window, frozen=frozen)
    outcomes = _score(benchmark, answers[:len(benchmark)])
    correct = Counter(o["category"] for o in outcomes if o["outcome"] == "correct")
    total = Counter(o["category"] for o in outcomes)
    return Measurement(
        benchmark_items=len(outcomes),
        benchmark_correct=sum(correct.values()),
        benchmark_score=sum(correct.values()) / len(outcomes) if outcomes else math.nan,
        benchmark_by_category={c: {"correct": correct[c], "total": n, "score": correct[c] / n}
                               for c, n in sorted(total.items())},
        benchmark_outcomes=outcomes,
        ppl=ppl["ppl"], nll=ppl["nll"], ppl_tokens=ppl["tokens"],
        **_recall_numbers(_score(facts, answers[len(benchmark):])),
        inputs_sha256=inputs_sha256(benchmark, general_text, max_tokens=max_tokens, window=window),
        seconds={"answers": answered - started, "perplexity": time.perf_counter() - answered},
    )


def _check_finite(pre: Measurement, post: Measurement) -> None:
    required = {"benchmark_pre": pre.benchmark_score, "benchmark_post": post.benchmark_score,
                "ppl_pre": pre.ppl, "ppl_post": post.ppl}
    optional = {"recall_pre": pre.recall, "recall_post": post.recall, "precision_post": post.precision}
    bad = [f"{name}={value!r}" for name, value in required.items()
           if not isinstance(value, (int, float)) or not math.isfinite(value)]
    bad += [f"{name}={value!r}" for name, value in optional.items()
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value))]
    if not bad and (pre.ppl <= 0 or post.ppl <= 0):
        bad.append(f"ppl_pre={pre.ppl!r}, ppl_post={post.ppl!r} (perplexity is always > 0)")
    if bad:
        raise ModelError(f"gate metrics must be finite numbers, got {', '.join(bad)}: the model's weights or the "
                         "measurement are broken (NaN/inf logits?); re-run the measurement or discard the adapter")


def decide(pre: Measurement, post: Measurement, cfg: GateConfig) -> GateDecision:
    """Approve or reject an adapter from `measure` before (`pre`) and after (`post`) training, with every reason."""
    _check_finite(pre, post)
    if pre.inputs_sha256 and post.inputs_sha256 and pre.inputs_sha256 != post.inputs_sha256:
        raise ValueError(f"pre and post were measured on different inputs ({pre.inputs_sha256[:12]} vs "
                         f"{post.inputs_sha256[:12]}): re-measure the base model on this benchmark and text")
    reasons: list[str] = []
    warnings: list[str] = []
    s_pre, s_post = float(pre.benchmark_score), float(post.benchmark_score)
    if s_pre > 0:
        ratio = s_post / s_pre
    else:
        # Nothing was right before, so nothing can be lost: no evidence of forgetting. Treating the
        # ratio as 1.0 keeps the gate from dividing by zero or rejecting every adapter of such a model.
        ratio = 1.0
        warnings.append("benchmark score before training is 0: ratio undefined, taken as 1.0 "
                        "(the benchmark cannot reject)")
    if ratio < cfg.min_benchmark_ratio:
        reasons.append(f"benchmark ratio {ratio:.3f} < {cfg.min_benchmark_ratio} "
                       f"(score {s_pre:.3f} before, {s_post:.3f} after)")
    drift = post.ppl / pre.ppl - 1.0
    change = f"({pre.ppl:.2f} → {post.ppl:.2f})"
    if drift > cfg.ppl_reject:
        reasons.append(f"perplexity drift {drift:+.1%} > +{cfg.ppl_reject:.0%} {change}")
    elif drift > cfg.ppl_warn:
        warnings.append(f"perplexity drift {drift:+.1%} > +{cfg.ppl_warn:.0%} {change}")
    recall_post = post.recall
    if cfg.min_new_fact_recall is not None:
        if recall_post is None:
            warnings.append(f"min_new_fact_recall {cfg.min_new_fact_recall} not checked: no new facts were measured")
        elif recall_post < cfg.min_new_fact_recall:
            reasons.append(f"new-fact recall {recall_post:.3f} < {cfg.min_new_fact_recall}")
    # Which general questions the adapter broke or fixed: what a person looks at in the morning.
    before = {o["id"]: o["outcome"] == "correct" for o in pre.benchmark_outcomes}
    after = {o["id"]: o["outcome"] == "correct" for o in post.benchmark_outcomes}
    lost = sorted(i for i, ok in after.items() if before.get(i) is True and not ok)
    gained = sorted(i for i, ok in after.items() if before.get(i) is False and ok)
    category = {o["id"]: o.get("category") or "other" for o in post.benchmark_outcomes}
    by_category = {c: 0 for c in sorted(set(category.values()))} | Counter(category[i] for i in lost)
    shown = ", ".join(f"{c} {n}" for c, n in by_category.items() if n)
    right_before = sum(before.values())
    share = len(lost) / right_before if right_before else 0.0
    if cfg.max_regressions is not None and len(lost) > cfg.max_regressions:
        reasons.append(f"{len(lost)} benchmark answer(s) the parent got right are wrong now ({shown}); at most "
                       f"{cfg.max_regressions} allowed (gate.max_regressions)")
    if cfg.max_regression_share is not None and share > cfg.max_regression_share:
        reasons.append(f"{len(lost)} of the {right_before} benchmark answers the parent got right are wrong now "
                       f"({share:.0%}: {shown}); at most {cfg.max_regression_share:.0%} allowed "
                       "(gate.max_regression_share)")
    elif lost:
        warnings.append(f"{len(lost)} of the {right_before} benchmark answers the parent got right are wrong now "
                        f"({share:.0%}: {shown})")
    return GateDecision(
        approved=not reasons, reasons=reasons, warnings=warnings,
        benchmark_pre=s_pre, benchmark_post=s_post, benchmark_ratio=ratio,
        ppl_pre=float(pre.ppl), ppl_post=float(post.ppl), ppl_drift=drift,
        recall_pre=pre.recall, recall_post=recall_post, precision_post=post.precision,
        benchmark_lost=lost, benchmark_gained=gained, regressions_by_category=dict(by_category),
        thresholds={"min_benchmark_ratio": cfg.min_benchmark_ratio, "max_regressions": cfg.max_regressions,
                    "max_regression_share": cfg.max_regression_share,
                    "ppl_warn": cfg.ppl_warn,
                    "ppl_reject": cfg.ppl_reject, "min_new_fact_recall": cfg.min_new_fact_recall},
    )
