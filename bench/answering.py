"""Tokens/s of greedy answering: mlx-lm `batch_generate` (tasks/model/answering.py) vs one `generate` per question.

Usage: .venv/bin/python bench/answering.py [--questions 32] [--batch-size 8] [--max-tokens 48] [--model DIR]
Answers the first N benchmark questions both ways with the default float32 model (or --model), checks that
both give the same texts, and prints tokens/s for each and the ratio. Run it on an otherwise idle machine:
on two shared cores the numbers move with whatever else is running.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.model.blas import ensure_fast_blas  # noqa: E402

BLAS = ensure_fast_blas()  # before mlx is imported

from mlx_lm import generate, load  # noqa: E402

from tasks.model.answering import answer_questions, chat_tokens  # noqa: E402
from tasks.gating import GateConfig  # noqa: E402
from tasks.probes import load_benchmark  # noqa: E402


def _default_model() -> Path:
    from tasks.model.config import ModelConfig
    from tasks.model.pull import converted_default

    return converted_default(ModelConfig(quantized=False), lambda *_: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--model", type=Path, default=None, help="an mlx-lm folder (default: the float32 default)")
    args = parser.parse_args()

    model_dir = args.model or _default_model()
    model, tokenizer = load(str(model_dir))
    questions = [item.question for item in load_benchmark(GateConfig().benchmark)][: args.questions]
    print(f"model {model_dir.name}, BLAS {BLAS.name}, {len(questions)} questions, max_tokens {args.max_tokens}")

    answer_questions(model, tokenizer, questions[:2], max_tokens=4)  # warm-up: first-call allocations

    start = time.perf_counter()
    batched = answer_questions(model, tokenizer, questions, max_tokens=args.max_tokens, batch_size=args.batch_size)
    batched_s = time.perf_counter() - start

    start = time.perf_counter()
    sequential = [generate(model, tokenizer, chat_tokens(tokenizer, [{"role": "user", "content": q}]),
                           max_tokens=args.max_tokens).strip() for q in questions]
    sequential_s = time.perf_counter() - start

    # Both produce the same texts, so one count serves both rates: each answer re-encoded, plus its
    # end-of-turn token unless it ran into max_tokens (re-encoding can differ from the generated ids by a token).
    tokens = sum(min(len(tokenizer.encode(text, add_special_tokens=False)) + 1, args.max_tokens) for text in batched)
    same = sum(a == b for a, b in zip(batched, sequential))
    for label, seconds in ((f"batched (batch {args.batch_size})", batched_s), ("sequential (generate)", sequential_s)):
        print(f"{label:22s}: {tokens} tokens in {seconds:6.1f} s = {tokens / seconds:6.1f} tokens/s")
    print(f"ratio batched/sequential: {sequential_s / batched_s:.2f}x; identical answers: {same}/{len(questions)}")


if __name__ == "__main__":
    main()
