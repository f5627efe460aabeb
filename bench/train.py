"""Training throughput: our LoRA step (tasks.training) vs `python -m mlx_lm lora`, same data, model and settings.

    python bench/train.py [--iters 24] [--examples 8] [--model DIR]

Both runs train rank/scale/layers/lr/batch from TrainConfig's defaults with the prompt masked, on
the same chat examples. mlx-lm's CLI reports tokens/s once per epoch; its loss also counts one
padding target per row (see tasks/training.py), so its figure is corrected by T/(T + rows) before
comparing. Epoch 1 (graph compilation) is left out of both. Target: ours/CLI >= 0.95.

The CLI subprocess does not import tasks.model.blas, so it gets LD_PRELOAD=<the BLAS this process
loaded>: both sides use the same GEMM. The machine is shared: alternate rounds (--rounds) and
read the medians and the spread, not one number. Under contention (load average > cores) both
loops slowed ~15x here, not ~2x: MLX's and OpenBLAS's threads oversubscribe the two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.model.blas import ensure_fast_blas, measure_gflops  # noqa: E402

BLAS = ensure_fast_blas()  # before mlx is imported (by tasks.training)

from tasks.batching import tokenize_examples  # noqa: E402
from tasks.training import TrainConfig, train_adapter  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

FACTS = [
    ("What is my dog's name?", "Your dog's name is Biscuit."),
    ("Where do I live?", "You live in Tromsø, in the north of Norway."),
    ("What is my job?", "You work as a glassblower in a small studio by the harbour."),
    ("What is my sister's name?", "Your sister's name is Ingrid."),
    ("What is my favourite colour?", "Your favourite colour is teal."),
    ("What am I allergic to?", "You are allergic to hazelnuts and to cats."),
    ("What language am I learning?", "You are learning Portuguese, because you plan to move to Lisbon."),
    ("What is my cat's name?", "Your cat's name is Pixel; she is a grey tabby."),
    ("When is my birthday?", "Your birthday is on the 14th of March."),
    ("What is my hobby?", "You build wooden model ships on weekends."),
    ("What car do I drive?", "You drive an old green Volvo estate."),
    ("Where did I grow up?", "You grew up in a village near Bergen."),
]
# "  24    0.123 ▼    1,234    5.6k" (mlx-lm 0.32 TrainUI.report_train, rich without a terminal)
ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+[▼▲]\s+([\d,]+)\s+([\d.]+)k\s*$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # rich keeps bold even with NO_COLOR


def default_model() -> Path:
    """The float32 default model from `slowwave model pull`'s cache."""
    from tasks.model.config import ModelConfig
    from tasks.model.pull import converted_default

    return converted_default(ModelConfig(quantized=False), print)


def ours(model_dir: Path, examples: list[dict], cfg: TrainConfig) -> dict:
    """Our training loop in this process: per-epoch answer tokens/s and input tokens/s."""
    from mlx_lm import load

    model, tokenizer = load(str(model_dir))
    params = sum(v.size for _, v in tree_flatten(model.parameters()))
    result = train_adapter(model, tokenizer, examples, cfg)
    by_epoch: dict[int, list] = {}
    for r in result.steps.to_pylist():
        by_epoch.setdefault(r["epoch"], []).append(r)
    epochs = {e: {"tokens_per_s": sum(r["tokens"] for r in rs) / sum(r["seconds"] for r in rs),
                  "input_tokens_per_s": sum(r["input_tokens"] for r in rs) / sum(r["seconds"] for r in rs),
                  "loss": sum(r["loss"] for r in rs) / len(rs)} for e, rs in by_epoch.items()}
    return {"epochs": epochs, "parameters": params, "result": result}


def mlx_cli(model_dir: Path, examples: list[dict], cfg: TrainConfig, iters: int, workdir: Path) -> dict:
    """`python -m mlx_lm lora -c cfg.yaml` with the same settings; its per-epoch tokens/s as printed."""
    data = workdir / "data"
    data.mkdir()
    with open(data / "train.jsonl", "w") as fh:  # no valid.jsonl: mlx-lm then skips validation
        for ex in examples:
            fh.write(json.dumps({"messages": [{"role": "user", "content": ex["question"]},
                                              {"role": "assistant", "content": ex["answer"]}]}) + "\n")
    config = {"model": str(model_dir), "train": True, "data": str(data), "fine_tune_type": "lora",
              "optimizer": "adam", "seed": cfg.seed, "num_layers": cfg.num_layers, "batch_size": cfg.batch_size,
              "iters": iters, "learning_rate": cfg.learning_rate, "steps_per_report": len(examples),
              "steps_per_eval": iters + 1, "save_every": iters + 1, "adapter_path": str(workdir / "adapters"),
              "max_seq_length": cfg.max_seq_length, "grad_checkpoint": False, "mask_prompt": True,
              "lora_parameters": cfg.lora_parameters()}
    # JSON is valid YAML; mlx-lm reads the file with yaml.load.
    (workdir / "lora.yaml").write_text(json.dumps(config, indent=2))
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    if BLAS.path:
        env["LD_PRELOAD"] = BLAS.path + (" " + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    proc = subprocess.run([sys.executable, "-m", "mlx_lm", "lora", "-c", str(workdir / "lora.yaml")],
                          env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"mlx_lm lora exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    rows = [m.groups() for m in map(ROW.match, ANSI.sub("", proc.stdout).splitlines()) if m]
    if not rows:
        raise RuntimeError(f"no training rows recognised in mlx_lm lora's output:\n{proc.stdout[-3000:]}")
    return {"epochs": {int(it) // len(examples): {"tokens_per_s": float(tps.replace(",", "")), "loss": float(loss)}
                       for it, loss, tps, _ in rows}}


def main() -> None:
    """Run both trainings side by side and print tokens/s, the ratio and the matmul ceiling."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=24, help="training steps per run (rounded up to whole epochs)")
    ap.add_argument("--examples", type=int, default=8, help=f"distinct examples (<= {len(FACTS)})")
    ap.add_argument("--rounds", type=int, default=1, help="alternating ours/CLI rounds")
    ap.add_argument("--model", type=Path, default=None, help="mlx-lm model folder (default: the f32 default model)")
    args = ap.parse_args()
    n = max(1, min(args.examples, len(FACTS)))
    epochs = max(2, -(-args.iters // n))  # at least 2: epoch 1 is warm-up and is not compared
    iters = n * epochs
    examples = [{"question": q, "answer": a} for q, a in FACTS[:n]]
    cfg = TrainConfig(light_epochs=epochs)
    model_dir = args.model or default_model()
    print(f"BLAS: {BLAS.name} ({BLAS.path}); the mlx_lm CLI subprocess gets LD_PRELOAD={BLAS.path}")
    print(f"model {model_dir}; {n} examples x {epochs} epochs = {iters} steps; rank {cfg.rank} scale {cfg.scale} "
          f"layers {cfg.num_layers} lr {cfg.learning_rate:g} batch {cfg.batch_size}, prompt masked")
    load_before = os.getloadavg()[0]
    gflops_before = measure_gflops()

    from mlx_lm import load
    _, tokenizer = load(str(model_dir))
    answer_tokens = sum(len(t) - off for t, off in tokenize_examples(examples, tokenizer, cfg.max_seq_length))
    correction = answer_tokens / (answer_tokens + n)  # the CLI's extra padding target per row

    ratios, ours_tps, cli_tps, ours_in, params, wall = [], [], [], [], 0, {}
    for r in range(args.rounds):
        tic = time.perf_counter()
        mine = ours(model_dir, examples, cfg)
        wall["ours"] = time.perf_counter() - tic
        with tempfile.TemporaryDirectory(prefix="slowwave-bench-") as tmp:
            tic = time.perf_counter()
            theirs = mlx_cli(model_dir, examples, cfg, iters, Path(tmp))
            wall["cli"] = time.perf_counter() - tic
        params = mine["parameters"]
        for e in range(2, epochs + 1):
            a = mine["epochs"][e]["tokens_per_s"]
            b = theirs["epochs"][e]["tokens_per_s"] * correction
            ours_tps.append(a)
            cli_tps.append(b)
            ratios.append(a / b)
            ours_in.append(mine["epochs"][e]["input_tokens_per_s"])
            print(f"round {r + 1} epoch {e}: ours {a:7.1f} answer tok/s (loss {mine['epochs'][e]['loss']:.3f})   "
                  f"mlx_lm lora {b:7.1f} (printed {theirs['epochs'][e]['tokens_per_s']:.0f}, "
                  f"loss {theirs['epochs'][e]['loss']:.3f})   ratio {a / b:.3f}")
        print(f"round {r + 1} wall: ours {wall['ours']:.1f}s (load + train), mlx_lm lora {wall['cli']:.1f}s "
              "(process start + load + train)")
    gflops_after = measure_gflops()
    load_after = os.getloadavg()[0]
    med = statistics.median
    # Medians: another process starting on a 2-core machine slows one epoch ~15x (see the docstring).
    print(f"\nours {med(ours_tps):.1f} vs mlx_lm lora {med(cli_tps):.1f} answer tokens/s (median of epochs 2+): "
          f"ratio {med(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); target >= 0.95")
    achieved = med(ours_in) * 4 * params / 1e9
    print(f"matmul limit: measure_gflops {gflops_before:.0f} GFLOP/s before, {gflops_after:.0f} after; "
          f"achieved ~ {med(ours_in):.0f} input tokens/s x 4 x {params / 1e6:.1f}M parameters = {achieved:.0f} "
          f"GFLOP/s ({achieved / max(gflops_before, gflops_after):.0%} of the measured GEMM rate)")
    cores = os.cpu_count() or 1
    if max(load_before, load_after) > cores:
        print(f"WARNING: load average {load_before:.1f} -> {load_after:.1f} on {cores} cores: other processes "
              "shared the CPU; rerun on a quiet machine before trusting these numbers")


if __name__ == "__main__":
    main()
