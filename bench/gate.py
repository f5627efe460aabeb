"""The gate's parts timed side by side: benchmark answers, new-fact answers and perplexity, before and after training.

    python bench/gate.py [--batch-sizes 4,8,16] [--model DIR]

A LoRA adapter is trained in-process on bench/train.py's short facts (the "after" model); the base model is
the "before". Each part is timed for both models with replies run to max_tokens or end of turn (the gate
before replies stopped when settled), with replies that stop once their score is settled
(tasks.probes.outcome_settled), and with those replies continuing from the prompts' shared beginning (the chat
template's system block) run once; the outcomes must agree. Perplexity is timed through the whole model and
with the blocks below the adapter (`num_layers`) computed once and kept (in a fresh cache: the parent computes
them, the candidate reads them back). Answers run at the gate's default batch size (GateConfig.batch_size);
the trained model's settled answers are also timed at each other size of --batch-sizes. In a sleep the
parent's benchmark answers and perplexity are cached by the parent's content (flows/gate_results.py), so
after a version's first gate only its new-fact answers run before training: the "gate now" line counts that,
"gate before" counts every part.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.model.blas import ensure_fast_blas  # noqa: E402

BLAS = ensure_fast_blas()  # before mlx is imported

from bench.train import FACTS, default_model, short_set  # noqa: E402
from tasks.gating import GateConfig, load_gate_inputs  # noqa: E402
from tasks.model import answering  # noqa: E402
from tasks.model.answering import SHARED_MIN, answer_questions, perplexity  # noqa: E402
from tasks.prefix import FrozenStates  # noqa: E402
from tasks.probes import Probe, outcome_settled, score_probe  # noqa: E402
from tasks.training import TrainConfig, train_adapter  # noqa: E402


KEYWORDS = ["Biscuit", "Tromsø", "glassblower", "Ingrid", "teal", "hazelnuts", "Portuguese", "Pixel", "March",
            "ships", "Volvo", "Bergen"]  # the word each of bench/train.py's FACTS must be answered with


def timed(fn):
    tic = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tic


def answer(model, tok, items: list[Probe], cfg: GateConfig, batch: int, settled: bool, shared: bool = True):
    stop = (lambda i, text: outcome_settled(items[i], text)) if settled else None
    answering.SHARED_MIN = SHARED_MIN if shared else 10 ** 9  # the prompts' common beginning run once, or not
    return timed(lambda: answer_questions(model, tok, [p.question for p in items], max_tokens=cfg.max_tokens,
                                          batch_size=batch, stop_when=stop))


def main() -> None:
    from mlx_lm import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", default="16", help="answering batch sizes to compare (settled stop), e.g. 4,8,16")
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

    def run(name, model, settled: bool, b: int, shared: bool = True) -> None:
        key = (name, settled, b) if shared else (name, settled, b, "unshared")
        bench_answers, parts[(*key, "benchmark")] = answer(model, tok, benchmark, cfg, b, settled, shared)
        fact_answers, parts[(*key, "facts")] = answer(model, tok, facts, cfg, b, settled, shared)
        outcomes = [score_probe(p, a)["outcome"] for p, a in zip(benchmark + facts, bench_answers + fact_answers)]
        parts[(*key, "outcomes")] = outcomes
        tokens = sum(len(tok.encode(a)) for a in bench_answers + fact_answers)
        how = ("settled stop" if settled else "full replies") + ("" if shared or not settled else ", no shared start")
        print(f"{name:6s} batch {b:2d} {how}: benchmark {parts[(*key, 'benchmark')]:6.1f} s, new facts "
              f"{parts[(*key, 'facts')]:5.1f} s, {tokens} answer tokens, {outcomes.count('correct')} correct",
              flush=True)

    os.environ["SLOWWAVE_CACHE"] = tempfile.mkdtemp(prefix="slowwave-gate-bench-")  # the kept states start cold
    layers = TrainConfig().num_layers
    probe = list(tok.encode(text[:400], add_special_tokens=False))[:16]
    for name, model in (("before", before), ("after", after)):
        ppl, parts[(name, "perplexity")] = timed(lambda: perplexity(model, tok, text, window=cfg.ppl_window,
                                                                    stride=cfg.ppl_window))
        # the blocks below the adapter: computed and kept by the parent ("before"), read by the candidate
        frozen = FrozenStates.build(model, layers, probe)
        split, parts[(name, "perplexity kept")] = timed(lambda: perplexity(
            model, tok, text, window=cfg.ppl_window, stride=cfg.ppl_window, frozen=frozen))
        print(f"{name:6s} perplexity on the general text: whole model {parts[(name, 'perplexity')]:.1f} s; "
              f"below the adapter {'computed and kept' if name == 'before' else 'read back'} "
              f"{parts[(name, 'perplexity kept')]:.1f} s (ppl {ppl['ppl']:.4f} / {split['ppl']:.4f})", flush=True)
        run(name, model, False, d)  # the gate before: every reply to max_tokens or end of turn
        run(name, model, True, d, shared=False)
        run(name, model, True, d)
        if parts[(name, False, d, "outcomes")] != parts[(name, True, d, "outcomes")]:
            print(f"WARNING: {name}: the settled stop changed an outcome")
        if parts[(name, True, d, "unshared", "outcomes")] != parts[(name, True, d, "outcomes")]:
            print(f"WARNING: {name}: the shared start changed an outcome")
    for b in sizes:  # answering speed by batch size, on the trained model (what a gate answers with)
        if b != d:
            run("after", after, True, b)
    def answers(name, settled, b, *rest):
        return parts[(name, settled, b, *rest, "benchmark")] + parts[(name, settled, b, *rest, "facts")]

    old = answers("before", False, d) + answers("after", False, d) + \
        parts[("before", "perplexity")] + parts[("after", "perplexity")]
    speed = {b: answers("after", True, b) for b in {*sizes, d}}
    best = min(speed, key=speed.get)
    # a night: the parent's benchmark and perplexity are cached, its new facts are not; the candidate's all run
    then = parts[("before", True, d, "unshared", "facts")] + answers("after", True, d, "unshared") + \
        parts[("after", "perplexity")]
    new = parts[("before", True, d, "facts")] + answers("after", True, d) + parts[("after", "perplexity kept")]
    first = new + parts[("before", True, d, "benchmark")] + parts[("before", "perplexity kept")]
    print(f"\ngate before (every part, full replies, batch {d}): {old:.1f} s")
    print(f"gate at the last measurement (parent's benchmark and perplexity cached, settled stop, batch {d}): "
          f"{then:.1f} s")
    print(f"gate now (+ the prompts' shared start run once, the candidate's perplexity from the kept frozen "
          f"prefix): {new:.1f} s ({then / new:.2f}x faster than the last, {old / new:.1f}x than before); a version's "
          f"first gate (nothing cached): {first:.1f} s")
    print("answering by batch size (after, settled): " + ", ".join(f"{b}: {speed[b]:.1f} s" for b in sorted(speed))
          + f"; fastest {best} (default {d})")
    print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
