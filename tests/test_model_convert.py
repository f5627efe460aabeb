"""GGUF -> mlx-lm conversion of the default model: it loads, answers, tokenizes like llama.cpp.

Fixtures `gguf_path` (the SmolLM2 Q4_1 GGUF) and `converted_model_dir` (its float32 conversion,
session-scoped) come from tests/conftest.py (the `slowwave model pull` cache).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from tasks.model.blas import ensure_fast_blas

pytestmark = pytest.mark.model

ensure_fast_blas()  # before mlx is imported below, when this module is collected first

# Measured 29.98 (float32 and quantized alike, Nov 2026); with the wrong rotary layout
# (rope_traditional false) it is 55, so 45 (measured x 1.5) still catches that mistake.
PERPLEXITY_BOUND = 45.0
PLAIN_ENGLISH = [
    "The sun rose slowly over the quiet village, and the baker opened his shop before anyone "
    "else was awake.",
    "Water boils at one hundred degrees Celsius at sea level, but at higher altitudes it boils at "
    "a lower temperature.",
    "She picked up the book from the table, read the first page, and decided to buy it for her "
    "brother's birthday.",
    "Many people enjoy walking in the park on weekends, especially when the weather is warm and "
    "sunny.",
]
ROUND_TRIP_TEXTS = [
    "Hello world",
    "In 2024 we sold 1,234,567 units at $9.99 (3.5% off).",
    "two  spaces,   three, \ttab\nnewline\n\n\nthree newlines  \n trailing ",
    "café, naïve, Zürich, Ελληνικά, 日本語, emoji 🎉👍🏽 and ½ ² ٣",
    "I'm sure they'll say it's fine, DON'T YOU THINK?",
    "def f(x):\n    return x**2  # square\n",
    "<|im_start|>user\nHi<|im_end|>\n",
    "",
]
GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _load(model_dir: Path):
    from mlx_lm import load

    return load(str(model_dir))


@lru_cache(maxsize=4)
def _loaded(model_dir: str):
    return _load(Path(model_dir))


def _greedy_answer(model, tokenizer, question: str, max_tokens: int = 32) -> str:
    from mlx_lm import generate

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True
    )
    return generate(model, tokenizer, prompt, max_tokens=max_tokens)  # default sampler: greedy


def _perplexity(model, tokenizer, texts: list[str]) -> float:
    import mlx.core as mx
    import mlx.nn as nn

    total, count = 0.0, 0
    for text in texts:
        ids = mx.array([tokenizer.encode(text, add_special_tokens=False)])
        logits = model(ids[:, :-1]).astype(mx.float32)
        total += nn.losses.cross_entropy(logits, ids[:, 1:], reduction="sum").item()
        count += ids.shape[1] - 1
    return math.exp(total / count)


def _gguf_meta(gguf_path: Path) -> dict:
    from tasks.model.gguf import read_gguf

    return read_gguf(gguf_path)[1]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _reference_encode(meta: dict, text: str) -> list[int]:
    """Pure-Python BPE as llama.cpp does it for pre-type 'smollm': split \\p{N}, GPT-2 regex, merges."""
    import regex

    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    vocab = {t: i for i, t in enumerate(tokens)}
    ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(meta["tokenizer.ggml.merges"])}
    specials = sorted((t for t, k in zip(tokens, types) if k == 3), key=len, reverse=True)
    byte_map = _bytes_to_unicode()
    ids: list[int] = []
    for part in regex.split("(" + "|".join(map(regex.escape, specials)) + ")", text):
        if part in specials:
            ids.append(vocab[part])
            continue
        for chunk in regex.findall(r"\p{N}|\P{N}+", part):
            for word in regex.findall(GPT2_SPLIT, chunk):
                symbols = [byte_map[b] for b in word.encode("utf-8")]
                while len(symbols) > 1:
                    pairs = [(ranks.get(p, math.inf), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
                    rank, i = min(pairs)
                    if rank == math.inf:
                        break
                    symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
                ids.extend(vocab[s] for s in symbols)
    return ids


def test_greedy_answer_names_paris(converted_model_dir):
    model, tokenizer = _loaded(str(converted_model_dir))
    answer = _greedy_answer(model, tokenizer, "What is the capital of France?")
    assert "Paris" in answer, answer


def test_perplexity_on_plain_english_is_sane(converted_model_dir):
    model, tokenizer = _loaded(str(converted_model_dir))
    ppl = _perplexity(model, tokenizer, PLAIN_ENGLISH)
    assert ppl < PERPLEXITY_BOUND, f"perplexity {ppl:.2f} >= {PERPLEXITY_BOUND}"


def test_tokenizer_round_trips_and_splits_digits(converted_model_dir):
    _, tokenizer = _loaded(str(converted_model_dir))
    for text in ROUND_TRIP_TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text, (text, ids)
    assert len(tokenizer.encode("2024", add_special_tokens=False)) == 4  # smollm: one digit each
    assert len(tokenizer.encode(" hello", add_special_tokens=False)) == 1
    assert tokenizer.encode("<|im_end|>", add_special_tokens=False) == [2]
    assert tokenizer.encode("Hi", add_special_tokens=True) == tokenizer.encode("Hi", add_special_tokens=False)


def test_tokenizer_matches_reference_bpe(converted_model_dir, gguf_path):
    _, tokenizer = _loaded(str(converted_model_dir))
    meta = _gguf_meta(gguf_path)
    for text in ROUND_TRIP_TEXTS + PLAIN_ENGLISH:
        assert tokenizer.encode(text, add_special_tokens=False) == _reference_encode(meta, text), text


def test_chat_template_and_special_tokens(converted_model_dir):
    _, tokenizer = _loaded(str(converted_model_dir))
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.eos_token_ids == {2}
    config = json.loads((converted_model_dir / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is False


def test_config_matches_gguf_metadata(converted_model_dir, gguf_path):
    meta = _gguf_meta(gguf_path)
    config = json.loads((converted_model_dir / "config.json").read_text())
    expected = {
        "hidden_size": meta["llama.embedding_length"],
        "intermediate_size": meta["llama.feed_forward_length"],
        "num_hidden_layers": meta["llama.block_count"],
        "num_attention_heads": meta["llama.attention.head_count"],
        "num_key_value_heads": meta["llama.attention.head_count_kv"],
        "max_position_embeddings": meta["llama.context_length"],
        "vocab_size": meta["llama.vocab_size"],
        "bos_token_id": meta["tokenizer.ggml.bos_token_id"],
        "eos_token_id": meta["tokenizer.ggml.eos_token_id"],
    }
    assert {k: config[k] for k in expected} == expected
    assert config["rope_theta"] == pytest.approx(meta["llama.rope.freq_base"], rel=1e-6)
    assert config["rms_norm_eps"] == pytest.approx(meta["llama.attention.layer_norm_rms_epsilon"], rel=1e-6)
    assert config["head_dim"] == meta["llama.rope.dimension_count"]
    assert config["rope_traditional"] is True
    assert config["tie_word_embeddings"] is True
    assert "quantization" not in config
    assert (converted_model_dir / "generation_config.json").is_file()


def test_float32_weights_are_float32(converted_model_dir):
    import mlx.core as mx

    weights = mx.load(str(converted_model_dir / "model.safetensors"))
    assert {str(w.dtype) for w in weights.values()} == {"mlx.core.float32"}
    assert weights["model.embed_tokens.weight"].shape == (49152, 576)
    assert not any(name.endswith((".scales", ".biases")) for name in weights)


def test_quantized_conversion_loads_and_answers(gguf_path, tmp_path):
    from tasks.model.gguf import convert_gguf

    out = tmp_path / "q4"
    report = convert_gguf(gguf_path, out, quantized=True)
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"]["bits"] == 4 and config["quantization"]["group_size"] == 32
    assert config["quantization"]["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    assert report["parameters"] == pytest.approx(134.5e6, rel=0.01)
    model, tokenizer = _load(out)
    assert "Paris" in _greedy_answer(model, tokenizer, "What is the capital of France?", max_tokens=12)


def test_conversion_replaces_atomically(gguf_path, tmp_path):
    from tasks.model.gguf import convert_gguf

    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("from an older conversion")
    convert_gguf(gguf_path, out, quantized=True)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp or backup dirs left


def test_not_a_gguf_is_a_clear_error(tmp_path):
    from tasks.model.gguf import GGUFMetadataError, convert_gguf

    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(GGUFMetadataError, match="bogus.gguf"):
        convert_gguf(bogus, tmp_path / "out", quantized=False)
    assert not (tmp_path / "out").exists()


def _blas_in_subprocess(tmp_path: Path, **env: str) -> dict:
    # A fresh process: in this one mlx is already imported, so the BLAS choice is fixed.
    code = (
        "import json; from tasks.model.blas import ensure_fast_blas, measure_gflops;"
        "i = ensure_fast_blas(); print(json.dumps({'name': i.name, 'hint': i.hint,"
        " 'gflops': measure_gflops(repeats=3)}))"
    )
    environ = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), **env}
    environ.pop("SLOWWAVE_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fast_blas_is_loaded_and_faster(tmp_path):
    fast = _blas_in_subprocess(tmp_path)
    if sys.platform == "darwin":
        assert fast["name"] == "accelerate"  # MLX links Accelerate itself; nothing to preload
        return
    assert fast["name"] in ("system-openblas", "scipy-openblas32 (patched)"), fast
    baseline = _blas_in_subprocess(tmp_path, SLOWWAVE_BLAS="off")
    assert baseline["name"] == "reference" and "SLOWWAVE_BLAS" in baseline["hint"]
    # Measured 92-183 vs 4-6 GFLOP/s on 2 shared cores (30 vs 6 while the host was busy); a
    # preload that silently failed gives ~1x, so 3x separates them without flaking under load.
    assert fast["gflops"] > 3 * baseline["gflops"], (fast, baseline)
