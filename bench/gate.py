"""The gate's parts timed side by side: benchmark answers, new-fact answers and perplexity, before and after training.

    python bench/gate.py [--batch-sizes 4,8,16] [--model DIR]

A LoRA adapter is trained in-process on bench/train.py's short facts (the "after" model); the base model is
the "before". Each part is timed for both models with replies run to max_tokens or end of turn (the gate
before replies stopped when settled) and with replies that stop once their score is settled
(tasks.probes.outcome_settled); the outcomes of the two must agree. Answers use batch_generate at the gate's
default batch size (GateConfig.batch_size); the trained model's settled answers are also timed at each of
--batch-sizes, to choose that default. In a sleep the parent's benchmark answers and
perplexity are cached by the parent's content (flows/gate_results.py), so after a version's first gate only
its new-fact answers run before training: the "gate now" line counts that, "gate before" counts every part.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.model.blas import ensure_fast_blas  # noqa: E402

BLAS = ensure_fast_blas()  # before mlx is imported

from bench.train import FACTS, default_model, short_set  # noqa: E402
from tasks.gating import GateConfig, load_gate_inputs  # noqa: E402
from tasks.model.answering import answer_questions, perplexity  # noqa: E402
from tasks.probes import Probe, outcome_settled, score_probe  # noqa: E402
from tasks.training import TrainConfig, train_adapter  # noqa: E402


KEYWORDS = ["Biscuit", "Tromsø", "glassblower", "Ingrid", "teal", "hazelnuts", "Portuguese", "Pixel", "March",
            "ships", "Volvo", "Bergen"]  # the word each of bench/train.py's FACTS must be answered with


def timed(fn):
    tic = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tic


def answer(model, tok, items: list[Probe], cfg: GateConfig, batch: int, settled: bool):
    stop = (lambda i, text: outcome_settled(items[i], text)) if settled else None
    return timed(lambda: answer_questions(model, tok, [p.question for p in items], max_tokens=cfg.max_tokens,
                                          batch_size=batch, stop_when=stop))


def main() -> None:
    from mlx_lm import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", default="4,8,16", help="answering batch sizes to compare (settled stop)")
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    cfg = GateConfig()
    benchmark, text = load_gate_inputs(cfg)
    facts = [Probe(id=f"f{i}", kind="recall", question=q, expected=(k,))
             for i, ((q, _), k) in enumerate(zip(FACTS, KEYWORDS))]
    model_dir = args.model or default_model()
    load_before = os.getloadavg()[0]
    before, tok = load(str(model_dir))
    after, _ = load(str(model_dir))
    trained = train_adapter(after, tok, short_set(), TrainConfig())
    print(f"model {model_dir}; {len(benchmark)} benchmark questions, {len(facts)} new-fact questions, "
          f"max_tokens {cfg.max_tokens}; after = LoRA trained {trained.iterations} steps; load {load_before:.2f}")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    d = cfg.batch_size
    parts: dict[tuple, float] = {}

    def run(name, model, settled: bool, b: int) -> None:
        bench_answers, parts[(name, "benchmark", settled, b)] = answer(model, tok, benchmark, cfg, b, settled)
        fact_answers, parts[(name, "facts", settled, b)] = answer(model, tok, facts, cfg, b, settled)
        outcomes = [score_probe(p, a)["outcome"] for p, a in zip(benchmark + facts, bench_answers + fact_answers)]
        parts[(name, "outcomes", settled, b)] = outcomes
        tokens = sum(len(tok.encode(a)) for a in bench_answers + fact_answers)
        print(f"{name:6s} batch {b:2d} {'settled stop' if settled else 'full replies'}: benchmark "
              f"{parts[(name, 'benchmark', settled, b)]:6.1f} s, new facts {parts[(name, 'facts', settled, b)]:5.1f} s, "
              f"{tokens} answer tokens, {outcomes.count('correct')} correct", flush=True)

    for name, model in (("before", before), ("after", after)):
        _, parts[(name, "perplexity")] = timed(lambda: perplexity(model, tok, text, window=cfg.ppl_window,
                                                                  stride=cfg.ppl_window))
        print(f"{name:6s} perplexity on the general text: {parts[(name, 'perplexity')]:.1f} s", flush=True)
        run(name, model, False, d)  # the gate before: every reply to max_tokens or end of turn
        run(name, model, True, d)
        if parts[(name, "outcomes", False, d)] != parts[(name, "outcomes", True, d)]:
            print(f"WARNING: {name}: the settled stop changed an outcome")
    for b in sizes:  # answering speed by batch size, on the trained model (what a gate answers with)
        if b != d:
            run("after", after, True, b)
    old = sum(parts[(n, p, False, d)] for n in ("before", "after") for p in ("benchmark", "facts")) + \
        parts[("before", "perplexity")] + parts[("after", "perplexity")]
    speed = {b: parts[("after", "benchmark", True, b)] + parts[("after", "facts", True, b)] for b in {*sizes, d}}
    best = min(speed, key=speed.get)
    new = parts[("before", "facts", True, d)] + parts[("after", "benchmark", True, d)] + \
        parts[("after", "facts", True, d)] + parts[("after", "perplexity")]
    first = new + parts[("before", "benchmark", True, d)] + parts[("before", "perplexity")]
    print(f"\ngate before (every part, full replies, batch {d}): {old:.1f} s")
    print(f"gate now (parent's benchmark and perplexity cached, settled stop, batch {d}): {new:.1f} s "
          f"({old / new:.1f}x faster); a version's first gate (nothing cached): {first:.1f} s ({old / first:.1f}x)")
    print("answering by batch size (after, settled): " + ", ".join(f"{b}: {speed[b]:.1f} s" for b in sorted(speed))
          + f"; fastest {best} (default {d})")
    print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
