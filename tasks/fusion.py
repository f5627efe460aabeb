"""Stage 7 model build: fuse an approved LoRA adapter into its parent model version; smoke-test the result.

This is mlx-lm's `fuse` command (mlx_lm/fuse.py) through the Python API: load base + adapter,
replace every LoRA layer by `layer.fuse()`, save weights and config. Differences on purpose:
both folders are sha256-verified first, the adapter must have been trained on this very parent
version, and the tokenizer files are copied byte for byte from the base instead of re-serialised.

Quantized bases (4-bit, the Apple Silicon default) stay quantized: `LoRALinear.fuse()` dequantizes
W, adds scale * B^T A^T and re-quantizes with the layer's own bits and group size, so the fused
folder is as small as its parent (102 MB vs 542 MB float32 for the default model) and loads with
the same config. The price is a fresh rounding of every fused matrix: adding the delta moves each
group's min/max, so every weight of the group lands on a new 4-bit grid. Measured on the default
model: the re-quantized matrices differ from base + delta by ~5x the delta's own norm (median over
the 56 fused matrices) yet keep ~80% of the delta's direction, and the trained fact and general
answers still came out right (tests/test_fusion.py). Fusing night after night on a quantized
chain adds that rounding noise again each time; dequantizing instead would keep the delta exactly
but make the folder ~5x larger and, on Apple Silicon, slower.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from storage.errors import ModelError
from storage.registry import MANIFEST, verify_folder
from tasks.probes import Probe
from tasks.model.blas import ensure_fast_blas

ensure_fast_blas()  # before mlx: the bundled reference BLAS makes every matmul ~30x slower

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
from mlx.utils import tree_flatten, tree_unflatten  # noqa: E402

# Written by fuse_adapter itself; everything else in the base folder (tokenizer, generation config) is copied.
_WRITTEN = ("config.json", "model.safetensors.index.json", MANIFEST)


def _is_weight_file(name: str) -> bool:
    return name.startswith("model") and name.endswith(".safetensors")


def fuse_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> dict:
    """Write base + adapter as one complete mlx-lm model folder into `out_dir`; return what was done."""
    from mlx_lm.utils import load, save_config, save_model

    tic = time.perf_counter()
    base_manifest = verify_folder(base_dir)
    adapter_manifest = verify_folder(adapter_dir)
    base_version = base_manifest.get("version")
    parent = adapter_manifest.get("parent_version")
    if parent != base_version:
        raise ModelError(f"adapter {adapter_dir.name} was trained on model version {parent!r}, not on "
                         f"{base_dir} ({base_version!r}); fuse it into its own parent or retrain it")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ModelError(f"{out_dir} is not empty; fuse into a fresh folder (the caller's atomic_dir)")

    model, tokenizer, config = load(str(base_dir), adapter_path=str(adapter_dir), return_config=True)
    fused = [(name, module.fuse(dequantize=False)) for name, module in model.named_modules()
             if hasattr(module, "fuse")]
    if not fused:
        raise ModelError(f"{adapter_dir}: loading it added no LoRA layers to {base_dir}; nothing to fuse")
    model.update_modules(tree_unflatten(fused))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(out_dir, model, donate_model=False)
    save_config(dict(config), out_dir / "config.json")
    copied = []
    for p in sorted(base_dir.iterdir()):
        if p.is_file() and p.name not in _WRITTEN and not _is_weight_file(p.name):
            shutil.copy2(p, out_dir / p.name)
            copied.append(p.name)
    quant = config.get("quantization")
    return {"base_version": base_version, "adapter_id": adapter_manifest.get("adapter_id"),
            "fused_layers": len(fused), "quantized": bool(quant),
            "bits": quant.get("bits") if quant else None, "group_size": quant.get("group_size") if quant else None,
            "copied_files": copied, "bytes": sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file()),
            "seconds": round(time.perf_counter() - tic, 3)}


def max_weight_difference(model_a: nn.Module, model_b: nn.Module) -> float:
    """Largest absolute difference between two models' same-named parameters (a fused-vs-adapter check)."""
    a, b = dict(tree_flatten(model_a.parameters())), dict(tree_flatten(model_b.parameters()))
    if a.keys() != b.keys():
        raise ValueError(f"models differ in parameters: {sorted(a.keys() ^ b.keys())[:5]}")
    return max(mx.abs(a[k].astype(mx.float32) - b[k].astype(mx.float32)).max().item() for k in a)


def smoke_test(model_dir: Path, questions: list[Probe], *, max_tokens: int = 24) -> dict:
    """Load a model folder, greedy-answer benchmark questions in batches and count the correct ones."""
    from mlx_lm import load

    from tasks.model.answering import answer_questions
    from tasks.probes import score_answer

    if not questions:
        raise ValueError("smoke_test needs at least one question")
    tic = time.perf_counter()
    model, tokenizer = load(str(model_dir))
    answers = answer_questions(model, tokenizer, [q.question for q in questions], max_tokens=max_tokens)
    rows = [{"id": q.id, "question": q.question, "answer": a,
             "outcome": score_answer(a, list(q.expected), list(q.forbidden))}
            for q, a in zip(questions, answers)]
    return {"model_dir": str(model_dir), "asked": len(rows), "correct": sum(r["outcome"] == "correct" for r in rows),
            "answers": rows, "seconds": round(time.perf_counter() - tic, 3)}
