"""Convert a llama-architecture GGUF file (e.g. SmolLM2-135M-Instruct Q4_1) to an mlx-lm model dir.

MLX reads Q4_0/Q4_1/Q8_0 GGUF tensors directly into its own affine quantized layout (packed
uint32 weights + float16 scales/biases, group size 32), so the conversion is a renaming plus,
for float32, one ``mx.dequantize`` per tensor. On Linux CPU float32 is the fast dtype (it goes
through BLAS); on Apple Silicon the quantized layout is the fast one (Metal kernels).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tasks.model.blas import ensure_fast_blas
from tasks.model.tokenizer import GGUFMetadataError, write_tokenizer_files

__all__ = ["GGUFMetadataError", "convert_gguf", "read_gguf", "model_config"]

# Q4_0, Q4_1 and Q8_0 — the only block formats MLX's GGUF reader keeps quantized — use blocks of
# 32 values; the packed width alone cannot tell group size from bits, so this one is fixed.
GGUF_GROUP_SIZE = 32
VALID_BITS = (2, 3, 4, 5, 6, 8)

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_TENSOR_RE = re.compile(r"^(?:blk\.(\d+)\.)?(\w+)\.(weight|bias|scales|biases)$")


def read_gguf(gguf_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a GGUF file's tensors (MLX arrays) and its metadata as plain Python values."""
    ensure_fast_blas()  # this may be the process's first mlx import; BLAS must come before it
    import mlx.core as mx

    if not Path(gguf_path).is_file():
        raise FileNotFoundError(f"{gguf_path}: GGUF file not found")
    try:
        tensors, raw = mx.load(str(gguf_path), return_metadata=True)
    except (RuntimeError, ValueError) as exc:  # MLX rejects e.g. Q4_K/Q6_K tensors here
        raise GGUFMetadataError(f"{gguf_path}: MLX cannot read this GGUF file: {exc}") from exc
    meta = {key: value.tolist() if isinstance(value, mx.array) else value for key, value in raw.items()}
    return tensors, meta


def _meta(meta: dict[str, Any], key: str, source: Path, default: Any = ...) -> Any:
    if key in meta:
        return meta[key]
    if default is ...:
        raise GGUFMetadataError(f"{source}: GGUF metadata has no {key!r}, needed for config.json")
    return default


def _f32(value: float) -> float:
    """Shortest decimal that round-trips the float32 (9.99999974738e-06 -> 1e-05)."""
    import numpy as np

    return float(str(np.float32(value)))


def model_config(meta: dict[str, Any], tensors: dict[str, Any], source: Path) -> dict[str, Any]:
    """Return the mlx-lm/HF llama config.json built from GGUF metadata."""
    arch = _meta(meta, "general.architecture", source)
    if arch != "llama":
        raise GGUFMetadataError(f"{source}: architecture {arch!r} is not supported (only 'llama')")
    if _meta(meta, f"{arch}.expert_count", source, 0):
        raise GGUFMetadataError(f"{source}: mixture-of-experts llama GGUFs are not supported")
    hidden = int(_meta(meta, f"{arch}.embedding_length", source))
    heads = int(_meta(meta, f"{arch}.attention.head_count", source))
    head_dim = int(_meta(meta, f"{arch}.attention.key_length", source, hidden // heads))
    rope_dim = int(_meta(meta, f"{arch}.rope.dimension_count", source, head_dim))
    if rope_dim != head_dim:
        raise GGUFMetadataError(f"{source}: partial rotary ({rope_dim} of {head_dim}) unsupported")
    vocab = int(_meta(meta, f"{arch}.vocab_size", source, len(_meta(meta, "tokenizer.ggml.tokens", source))))
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(_meta(meta, f"{arch}.feed_forward_length", source)),
        "num_hidden_layers": int(_meta(meta, f"{arch}.block_count", source)),
        "num_attention_heads": heads,
        "num_key_value_heads": int(_meta(meta, f"{arch}.attention.head_count_kv", source, heads)),
        "head_dim": head_dim,
        "rms_norm_eps": _f32(_meta(meta, f"{arch}.attention.layer_norm_rms_epsilon", source)),
        "rope_theta": _f32(_meta(meta, f"{arch}.rope.freq_base", source, 10000.0)),
        # GGUF stores Q/K rows permuted for llama.cpp's interleaved rotary; MLX's "traditional"
        # rope is that same interleaved form, so the weights need no un-permuting.
        "rope_traditional": True,
        "max_position_embeddings": int(_meta(meta, f"{arch}.context_length", source)),
        "vocab_size": vocab,
        "tie_word_embeddings": "output.weight" not in tensors,
        "attention_bias": "blk.0.attn_q.bias" in tensors,
        "mlp_bias": "blk.0.ffn_up.bias" in tensors,
        "hidden_act": "silu",
        "bos_token_id": meta.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": _meta(meta, "tokenizer.ggml.eos_token_id", source),
        "pad_token_id": meta.get("tokenizer.ggml.padding_token_id"),
    }
    scaling = meta.get(f"{arch}.rope.scaling.type", "none")
    if scaling == "linear":
        config["rope_scaling"] = {"type": "linear", "factor": _f32(meta[f"{arch}.rope.scaling.factor"])}
    elif scaling != "none":
        raise GGUFMetadataError(f"{source}: rope scaling {scaling!r} is not supported")
    return config


def _mlx_name(gguf_name: str, source: Path) -> str:
    match = _TENSOR_RE.match(gguf_name)
    base = match and (_LAYER_NAMES.get(match[2]) if match[1] is not None else _GLOBAL_NAMES.get(match[2]))
    if not base:
        raise GGUFMetadataError(f"{source}: unexpected tensor {gguf_name!r} for a llama model")
    prefix = f"model.layers.{match[1]}." if match[1] is not None else ""
    return f"{prefix}{base}.{match[3]}"


def _bits(name: str, weight: Any, scales: Any, source: Path) -> int:
    in_features = scales.shape[-1] * GGUF_GROUP_SIZE
    bits, remainder = divmod(weight.shape[-1] * 32, in_features)
    if remainder or bits not in VALID_BITS:
        raise GGUFMetadataError(
            f"{source}: cannot infer bits for {name} (packed {weight.shape}, scales {scales.shape})"
        )
    return bits


def convert_gguf(gguf_path: Path, out_dir: Path, *, quantized: bool) -> dict:
    """Convert a llama GGUF into an mlx-lm model directory (float32 or MLX-quantized), atomically."""
    ensure_fast_blas()  # this may be the process's first mlx import; BLAS must come before it
    import mlx.core as mx

    start = time.perf_counter()
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    tensors, meta = read_gguf(gguf_path)
    config = model_config(meta, tensors, gguf_path)

    weights: dict[str, Any] = {}
    layer_bits: dict[str, int] = {}
    parameters = 0
    for name, array in tensors.items():
        if name.endswith((".scales", ".biases")):
            continue  # handled with their .weight below
        stem = name.removesuffix(".weight")
        target = _mlx_name(name, gguf_path)
        if f"{stem}.scales" not in tensors:
            weights[target] = array.astype(mx.float32) if not quantized else array
            parameters += array.size
            continue
        scales, biases = tensors[f"{stem}.scales"], tensors[f"{stem}.biases"]
        bits = _bits(name, array, scales, gguf_path)
        parameters += array.size * 32 // bits
        module = target.removesuffix(".weight")
        if quantized:
            weights[target] = array
            weights[f"{module}.scales"], weights[f"{module}.biases"] = scales, biases
            layer_bits[module] = bits
        else:
            # float32 scales/biases make the affine dequantization exact (no float16 rounding).
            weights[target] = mx.dequantize(
                array, scales.astype(mx.float32), biases.astype(mx.float32),
                group_size=GGUF_GROUP_SIZE, bits=bits,
            )

    if quantized and layer_bits:
        default_bits = Counter(layer_bits.values()).most_common(1)[0][0]
        quantization: dict[str, Any] = {"group_size": GGUF_GROUP_SIZE, "bits": default_bits, "mode": "affine"}
        for module, bits in sorted(layer_bits.items()):
            if bits != default_bits:  # e.g. the 8-bit token embedding next to 4-bit linears
                quantization[module] = {"group_size": GGUF_GROUP_SIZE, "bits": bits}
        config["quantization"] = quantization
        config["quantization_config"] = quantization
        config["torch_dtype"] = "float16"
    else:
        config["torch_dtype"] = "float32"

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the model dir is an ordinary shared directory
    try:
        mx.eval(weights)
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        token_ids = write_tokenizer_files(meta, tmp, gguf_path)
        _write_json(tmp / "config.json", config)
        ids = ("bos_token_id", "eos_token_id", "pad_token_id")
        generation = {key: config[key] for key in ids if config[key] is not None}
        _write_json(tmp / "generation_config.json", generation)
        size = sum(f.stat().st_size for f in tmp.iterdir())
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only left behind when something above failed

    return {
        "source": str(gguf_path),
        "out_dir": str(out_dir),
        "quantized": quantized,
        "dtype": f"mlx affine {sorted(set(layer_bits.values()))}-bit" if quantized else "float32",
        "quantization": config.get("quantization"),
        "tensors": len(weights),
        "parameters": int(parameters),
        "bytes": size,
        "tokenizer": token_ids,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _replace_dir(new: Path, target: Path) -> None:
    """Move a finished directory into place; a reader never sees a half-written model."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)  # put the previous model back rather than leave none
        raise
    shutil.rmtree(old)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
