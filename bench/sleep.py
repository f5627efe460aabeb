"""One light sleep of the demo, timed per stage on a fresh home: ingest of the bundled sample conversations to v0001.

    python bench/sleep.py [--keep DIR]

What `make demo` does, in a temporary home (or --keep DIR): the model is pulled first (not timed: a
one-time conversion), then `sleep_cycle` runs with Prefect's test harness as the tests use it. Each stage's
seconds come from the run's own stage marks (storage/runs.py), so they are the pipeline's, not this
script's. Target: ingest to v0001 within 120 s on this machine; the gate within 20% of the sleep's wall.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.model.blas import ensure_fast_blas  # noqa: E402

ensure_fast_blas()

TARGET_SECONDS = 120.0


def bound(home, run_id: str) -> None:
    """The training arithmetic of tonight's mix at the matmul limit, and where its tokens go."""
    from collections import Counter

    from mlx_lm import load

    from bench.train import block_shapes, flops
    from storage import registry
    from storage.runs import read_run
    from tasks.model.blas import measure_gflops
    from tasks.training import TrainConfig

    cfg = TrainConfig()
    model, tok = load(str(registry.get(home, "v0000").path))
    rows = read_run(home, "training_examples", run_id, columns=["source", "text"]).to_pylist()
    tokens, answers, system = Counter(), Counter(), 0
    for r in rows:
        n = len(tok.encode(r["text"]))
        tokens[r["source"]] += n
        head, sep, answer = r["text"].rpartition("<|im_start|>assistant\n")
        answers[r["source"]] += len(tok.encode(answer)) if sep else n  # prose: every token is trained
        if r["text"].startswith("<|im_start|>system"):
            system += len(tok.encode(r["text"].split("<|im_end|>", 1)[0] + "<|im_end|>"))
    total, epochs = sum(tokens.values()), cfg.light_epochs
    width = total / max(1, len(rows))
    needed, _ = flops(block_shapes(model), cfg, total * epochs, sum(answers.values()) * epochs, width, False)
    gemm = measure_gflops()
    print(f"training mix: {len(rows)} examples, {total} tokens per epoch x {epochs} epochs; "
          f"{needed / (total * epochs) / 1e6:.0f} MFLOPs per token needed; at the GEMM rate measured now "
          f"({gemm:.0f} GFLOP/s) training alone needs >= {needed / gemm / 1e9:.1f} s")
    for source, n in tokens.most_common():
        print(f"  {source:10s} {n:6d} tokens ({n / total:.0%}), {answers[source]:5d} trained")
    print(f"  the system prompt the chat template injects: {system} tokens ({system / total:.0%} of all)")


def main() -> int:
    from prefect.testing.utilities import prefect_test_harness

    from flows.demo import SAMPLE_SESSIONS
    from flows.prefect_env import configure
    from flows.progress import Board, listening
    from storage.home import Home

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, default=None, help="home folder to use and keep (default: a temp one)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="slowwave-bench-sleep-"))
    home = Home(root).ensure()
    configure(home)
    from flows.cli import main as cli

    tic = time.perf_counter()
    cli(["--home", str(root), "model", "pull"])
    pull_s = time.perf_counter() - tic
    inbox = root / "inbox" / "sample"
    inbox.mkdir(parents=True, exist_ok=True)
    for f in sorted(SAMPLE_SESSIONS.glob("*.jsonl")):
        shutil.copy2(f, inbox / f.name)
    from flows.sleep import sleep_cycle

    load_before = os.getloadavg()
    board = Board()  # the stages' own progress reports: each stage's seconds, as the CLI shows them
    with prefect_test_harness(), listening(board.apply):
        tic = time.perf_counter()
        summary = sleep_cycle(home_dir=str(root), depth="light")
        wall = time.perf_counter() - tic
    load_after = os.getloadavg()
    print(f"home {root}; model pull {pull_s:.1f} s (once, not counted); load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    seconds = {name: st.seconds for name, st in board.stages.items() if st.seconds is not None}
    for stage, took in seconds.items():
        print(f"  {stage:14s} {took:7.1f} s")
    print(f"  {'(outside stages)':16s} {wall - sum(seconds.values()):5.1f} s (Prefect flow start and end, summary)")
    gate = seconds.get("gate", 0.0)
    print(f"sleep wall {wall:.1f} s (target <= {TARGET_SECONDS:.0f} s: {'met' if wall <= TARGET_SECONDS else 'NOT met'}); "
          f"gate {gate:.1f} s = {gate / wall:.0%} of the wall (target <= 20%)")
    print(f"stages' numbers: {json.dumps(summary.stages.get('train', {}))}")
    bound(home, summary.run_id)
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
