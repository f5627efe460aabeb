"""Training throughput: our LoRA step (tasks.training) vs `python -m mlx_lm lora`, same data, model and settings.

    python bench/train.py [--batch 8] [--epochs 3] [--rounds 1] [--model DIR]

Two data sets, short (one-sentence answers, as a night's facts) and long (paragraph answers, as rehearsal
prose). For each: ours and the CLI at the same batch size (target: ours/CLI >= 0.95), and the CLI at batch 1
(what training ran at before). Both train rank/scale/layers/lr from TrainConfig's defaults with the prompt
masked. mlx-lm's CLI reports tokens/s once per epoch; its loss also counts one padding target per row (see
tasks/loss.py), so its figure is corrected by T/(T + rows). Epoch 1 (graph compilation) is left out of the
per-epoch ratio; the whole-run figures include it and ours include the frozen layers' one pass (setup).

Matmul limit: the FLOPs a correct LoRA step needs per token are derived from the model's own shapes and
printed (forward through every block, backward through the LoRA blocks and the head, LoRA's own matmuls;
the head only where a target is trained), times tokens/s, divided by the GEMM GFLOP/s measured in the same
run. Ours skips the frozen blocks after their one pass (tasks/prefix.py), so the FLOPs it really does are
printed too: needed/s above 100% of the GEMM rate means work that was not redone.

The CLI subprocess does not import tasks.model.blas, so it gets LD_PRELOAD=<the BLAS this process loaded>:
both sides use the same GEMM. Alternate rounds (--rounds) on a shared machine and read medians.
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
from tasks.training import TrainConfig, step_count, train_adapter  # noqa: E402
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
PEOPLE = ["Ada", "Bruno", "Chen", "Dagny", "Emeka", "Farah"]


def short_set() -> list[dict]:
    """48 one-sentence question-answer pairs (four wordings of each fact)."""
    lead = ["", "Quick question: ", "Remind me, ", "Tell me: "]
    return [{"question": lead[k] + q, "answer": a} for k in range(4) for q, a in FACTS]


def long_set() -> list[dict]:
    """24 paragraph answers of ~120-200 tokens (a person's facts retold, as rehearsal prose is)."""
    out = []
    for i in range(24):
        facts = [FACTS[(i + j) % len(FACTS)][1] for j in range(7)]
        who = PEOPLE[i % len(PEOPLE)]
        out.append({"question": f"Write a short note about everything {who} told you, #{i}.",
                    "answer": f"Here is what {who} shared. " + " ".join(f.replace("Your", "Their").replace(
                        "You", "They") for f in facts) + " That is all for now."})
    return out


# "  24    0.123 ▼    1,234    5.6k" (mlx-lm 0.32 TrainUI.report_train, rich without a terminal)
ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+[▼▲]\s+([\d,]+)\s+([\d.]+)k\s*$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # rich keeps bold even with NO_COLOR


def default_model() -> Path:
    """The float32 default model from `slowwave model pull`'s cache."""
    from tasks.model.config import ModelConfig
    from tasks.model.pull import converted_default

    return converted_default(ModelConfig(quantized=False), print)


def block_shapes(model) -> dict:
    """Matmul parameter counts of the model: per block, the head, the hidden and attention widths."""
    import mlx.nn as nn

    blocks = model.model.layers
    per_block = sum(m.weight.size for _, m in blocks[0].named_modules() if isinstance(m, nn.Linear))
    att = blocks[0].self_attn
    linears = [(m.weight.shape[1], m.weight.shape[0]) for _, m in blocks[0].named_modules()
               if isinstance(m, nn.Linear)]
    return {"blocks": len(blocks), "per_block": per_block, "head": model.model.embed_tokens.weight.size,
            "attention_width": att.n_heads * (att.q_proj.weight.shape[0] // att.n_heads), "linears": linears}


def flops(shapes: dict, cfg: TrainConfig, input_tokens: int, trained_tokens: int, width: float,
          cached: bool) -> tuple[float, float]:
    """(FLOPs a LoRA run needs, FLOPs ours did) for these token counts at mean padded width `width`.

    Needed per input token: forward through every block 2·L·P (P = a block's matmul weights) plus attention
    4·L·w·d (scores and values over w positions), backward of the activations through the N LoRA blocks
    2·N·P + 8·N·w·d (the frozen weights need no gradient), LoRA's own forward, dX and dW 6·r·(in+out) per
    adapted linear. Per trained token: the head forward and its dX, 4·V·d. Ours with the cache does the
    forward of the L-N frozen blocks once per example, not once per epoch (cached=True: counted by caller)."""
    L, N, P, d = shapes["blocks"], cfg.num_layers, shapes["per_block"], shapes["attention_width"]
    lora = 6 * cfg.rank * sum(i + o for i, o in shapes["linears"]) * N
    tail = 2 * N * P + 4 * N * width * d + 2 * N * P + 8 * N * width * d + lora
    frozen = 2 * (L - N) * P + 4 * (L - N) * width * d
    head = 4 * shapes["head"] * trained_tokens
    needed = (frozen + tail) * input_tokens + head
    return needed, (tail * input_tokens + head) if cached else needed


def ours(model_dir: Path, examples: list[dict], cfg: TrainConfig) -> dict:
    """Our training loop in this process: per-epoch answer tokens/s, and the whole run."""
    from mlx_lm import load

    model, tokenizer = load(str(model_dir))
    shapes = block_shapes(model)
    tic = time.perf_counter()
    result = train_adapter(model, tokenizer, examples, cfg)
    wall = time.perf_counter() - tic
    by_epoch: dict[int, list] = {}
    for r in result.steps.to_pylist():
        by_epoch.setdefault(r["epoch"], []).append(r)
    epochs = {e: {"tokens_per_s": sum(r["tokens"] for r in rs) / sum(r["seconds"] for r in rs),
                  "input_tokens": sum(r["input_tokens"] for r in rs), "tokens": sum(r["tokens"] for r in rs),
                  "seconds": sum(r["seconds"] for r in rs), "steps": len(rs),
                  "loss": sum(r["loss"] for r in rs) / len(rs)} for e, rs in by_epoch.items()}
    return {"epochs": epochs, "shapes": shapes, "result": result, "wall": wall}


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
              "iters": iters, "learning_rate": cfg.learning_rate, "steps_per_report": len(examples) // cfg.batch_size,
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
    return {"epochs": {int(it) // (len(examples) // cfg.batch_size): {"tokens_per_s": float(tps.replace(",", "")), "loss": float(loss)}
                       for it, loss, tps, _ in rows}}


def run_set(name: str, examples: list[dict], model_dir: Path, cfg: TrainConfig, rounds: int, gemm: float) -> dict:
    """Ours and the CLI at cfg.batch_size, and the CLI at batch 1, on one data set; prints and returns ratios."""
    from mlx_lm import load

    _, tokenizer = load(str(model_dir))
    items = tokenize_examples(examples, tokenizer, cfg.max_seq_length)
    answer_tokens = sum(len(t) - off for t, off in items)
    lengths = [len(t) for t, _ in items]
    correction = answer_tokens / (answer_tokens + len(items))  # the CLI's extra padding target per row
    iters = step_count(len(items), cfg.batch_size, cfg.epochs)
    one = cfg.model_copy(update={"batch_size": 1})
    print(f"\n== {name}: {len(items)} examples of {min(lengths)}-{max(lengths)} tokens (mean "
          f"{statistics.mean(lengths):.0f}, {answer_tokens / len(items):.0f} trained), {cfg.epochs} epochs, "
          f"batch {cfg.batch_size} = {iters} steps")
    same, vs_one, mine_tps, mine = [], [], [], None
    for r in range(rounds):
        mine = ours(model_dir, examples, cfg)
        with tempfile.TemporaryDirectory(prefix="slowwave-bench-") as tmp:
            theirs = mlx_cli(model_dir, examples, cfg, iters, Path(tmp))
        with tempfile.TemporaryDirectory(prefix="slowwave-bench-") as tmp:
            theirs_one = mlx_cli(model_dir, examples, one, step_count(len(items), 1, cfg.epochs), Path(tmp))
        for e in range(2, cfg.epochs + 1):
            a = mine["epochs"][e]["tokens_per_s"]
            b = theirs["epochs"][e]["tokens_per_s"] * correction
            c = theirs_one["epochs"][e]["tokens_per_s"] * correction
            mine_tps.append(a)
            same.append(a / b)
            vs_one.append(a / c)
            print(f"round {r + 1} epoch {e}: ours {a:7.1f} trained tok/s (loss {mine['epochs'][e]['loss']:.3f})   "
                  f"mlx_lm lora batch {cfg.batch_size} {b:7.1f} (loss {theirs['epochs'][e]['loss']:.3f})   "
                  f"batch 1 {c:7.1f}   ratios {a / b:.2f} / {a / c:.2f}")
    med = statistics.median
    res = mine["result"]
    ins = sum(ep["input_tokens"] for ep in mine["epochs"].values())
    width = ins / (len(items) * cfg.epochs)  # every example is one row of one batch per epoch
    needed, done = flops(mine["shapes"], cfg, ins, res.tokens, width, res.frozen_cached)
    if res.frozen_cached:  # the frozen blocks' one pass over every example (unpadded)
        L, N = mine["shapes"]["blocks"], cfg.num_layers
        done += sum(n - 1 for n in lengths) * 2 * (L - N) * mine["shapes"]["per_block"]
    run_s = res.seconds + res.setup_seconds
    per_tok = needed / ins
    print(f"ours vs mlx_lm lora at batch {cfg.batch_size}: {med(same):.2f}x (min {min(same):.2f}, max {max(same):.2f}; "
          f"target >= 0.95); vs mlx_lm lora at batch 1: {med(vs_one):.2f}x")
    print(f"whole run (compile and the frozen layers' pass included): {run_s:.1f} s = {res.setup_seconds:.1f} s "
          f"setup + {res.seconds:.1f} s steps; {ins / run_s:.0f} input tok/s; frozen layers cached: {res.frozen_cached}")
    print(f"FLOPs needed per input token {per_tok / 1e6:.0f} M (mean padded width {width:.0f}); needed "
          f"{needed / run_s / 1e9:.0f} GFLOP/s = {needed / run_s / 1e9 / gemm:.0%} of the GEMM rate; "
          f"done {done / run_s / 1e9:.0f} GFLOP/s = {done / run_s / 1e9 / gemm:.0%}")
    return {"same": med(same), "vs_one": med(vs_one), "needed": needed / run_s / 1e9 / gemm,
            "done": done / run_s / 1e9 / gemm, "seconds": run_s}


def main() -> None:
    """Both data sets, ours vs the CLI side by side; the matmul limit measured before and after."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: TrainConfig's)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (>= 2: epoch 1 is warm-up)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per data set")
    ap.add_argument("--sets", default="short,long", help="comma-separated: short, long")
    ap.add_argument("--model", type=Path, default=None, help="mlx-lm model folder (default: the f32 default model)")
    args = ap.parse_args()
    cfg = TrainConfig(light_epochs=max(2, args.epochs))
    if args.batch:
        cfg = cfg.model_copy(update={"batch_size": args.batch})
    model_dir = args.model or default_model()
    print(f"BLAS: {BLAS.name} ({BLAS.path}); the mlx_lm CLI subprocess gets LD_PRELOAD={BLAS.path}")
    print(f"model {model_dir}; rank {cfg.rank} scale {cfg.scale} layers {cfg.num_layers} lr {cfg.learning_rate:g} "
          f"batch {cfg.batch_size}, prompt masked")
    load_before = os.getloadavg()
    gemm_before = measure_gflops()
    sets = {"short": short_set, "long": long_set}
    out = {name: run_set(name, sets[name](), model_dir, cfg, args.rounds, gemm_before)
           for name in args.sets.split(",")}
    gemm_after = measure_gflops()
    load_after = os.getloadavg()
    print(f"\nGEMM {gemm_before:.0f} GFLOP/s before, {gemm_after:.0f} after (the ratios above use the first); "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for name, r in out.items():
        print(f"{name}: ours/CLI same batch {r['same']:.2f}, ours/CLI batch 1 {r['vs_one']:.2f}, needed "
              f"{r['needed']:.0%} of GEMM, done {r['done']:.0%}, run {r['seconds']:.1f} s")
    cores = os.cpu_count() or 1
    if max(load_before[0], load_after[0]) > cores:
        print(f"WARNING: load average above {cores} cores: other processes shared the CPU; rerun before trusting "
              "these numbers")


if __name__ == "__main__":
    main()
