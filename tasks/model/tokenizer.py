"""Build a Hugging Face tokenizer (tokenizer.json + config files) from a GGUF file's metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

__all__ = ["GGUFMetadataError", "build_tokenizer", "write_tokenizer_files"]

TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3  # llama.cpp's "control" tokens: <|im_start|>, <|endoftext|>, ...
TOKEN_TYPE_USER_DEFINED = 4

# llama.cpp's ``tokenizer.ggml.pre`` names whose splitting the tokenizers library can reproduce.
# "smollm" (like starcoder) isolates every digit (\p{N}) before the GPT-2 regex.
_DIGIT_SPLITTING_PRE = {"smollm", "starcoder", "refact", "codeshell"}
_GPT2_PRE = {"gpt-2", "gpt2", "default"}


class GGUFMetadataError(ValueError):
    """The GGUF file lacks metadata the conversion needs, or uses an unsupported variant."""


def _require(meta: dict[str, Any], key: str, source: Path | str) -> Any:
    if key not in meta:
        raise GGUFMetadataError(f"{source}: GGUF metadata has no {key!r}, needed for the tokenizer")
    return meta[key]


def _pre_tokenizer(pre: str, source: Path | str) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if pre in _DIGIT_SPLITTING_PRE:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in _GPT2_PRE:
        return byte_level
    raise GGUFMetadataError(
        f"{source}: tokenizer.ggml.pre={pre!r} is not supported (known: "
        f"{sorted(_DIGIT_SPLITTING_PRE | _GPT2_PRE)})"
    )


def build_tokenizer(meta: dict[str, Any], source: Path | str = "<gguf>") -> Tokenizer:
    """Return the byte-level BPE tokenizer described by GGUF ``tokenizer.ggml.*`` metadata."""
    kind = _require(meta, "tokenizer.ggml.model", source)
    if kind != "gpt2":
        raise GGUFMetadataError(f"{source}: tokenizer.ggml.model={kind!r}; only byte-level BPE 'gpt2'")
    tokens: list[str] = _require(meta, "tokenizer.ggml.tokens", source)
    merges: list[str] = _require(meta, "tokenizer.ggml.merges", source)
    types: list[int] = _require(meta, "tokenizer.ggml.token_type", source)
    if len(types) != len(tokens):
        raise GGUFMetadataError(f"{source}: {len(tokens)} tokens but {len(types)} token types")

    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise GGUFMetadataError(f"{source}: tokenizer.ggml.tokens has duplicate entries")
    # Byte-level tokens never contain a literal space (it is mapped to "Ġ"), so one split is exact.
    pairs = [tuple(merge.split(" ", 1)) for merge in merges]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(meta.get("tokenizer.ggml.pre", "default"), source)
    tokenizer.decoder = decoders.ByteLevel()
    if meta.get("tokenizer.ggml.add_bos_token", False):
        bos = tokens[int(_require(meta, "tokenizer.ggml.bos_token_id", source))]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)

    added = [
        AddedToken(tokens[i], special=(t == TOKEN_TYPE_CONTROL), normalized=False)
        for i, t in enumerate(types)
        if t in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED)
    ]
    tokenizer.add_tokens(added)  # ids already exist in the vocab, so they keep their GGUF ids
    return tokenizer


def write_tokenizer_files(meta: dict[str, Any], out_dir: Path, source: Path | str = "<gguf>") -> dict:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json; return the ids."""
    tokenizer = build_tokenizer(meta, source)
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    types: list[int] = meta["tokenizer.ggml.token_type"]

    def token_for(key: str) -> str | None:
        return tokens[int(meta[key])] if key in meta else None

    ids = {
        name: int(meta[f"tokenizer.ggml.{name}_token_id"])
        for name in ("bos", "eos", "unk", "padding")
        if f"tokenizer.ggml.{name}_token_id" in meta
    }
    if "eos" not in ids:
        raise GGUFMetadataError(f"{source}: GGUF metadata has no 'tokenizer.ggml.eos_token_id'")
    special = {
        "bos_token": token_for("tokenizer.ggml.bos_token_id"),
        "eos_token": token_for("tokenizer.ggml.eos_token_id"),
        "unk_token": token_for("tokenizer.ggml.unknown_token_id"),
        "pad_token": token_for("tokenizer.ggml.padding_token_id"),
    }
    special = {key: value for key, value in special.items() if value is not None}
    control = [tokens[i] for i, t in enumerate(types) if t == TOKEN_TYPE_CONTROL]
    additional = [t for t in control if t not in special.values()]

    tokenizer.save(str(out_dir / "tokenizer.json"))
    config = {
        # The generic class loads tokenizer.json as is; a model-specific class (GPT2Tokenizer,
        # LlamaTokenizer) may rebuild the pre-tokenizer in transformers 5 and lose the digit split.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        "add_prefix_space": bool(meta.get("tokenizer.ggml.add_space_prefix", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(meta.get(f"{meta.get('general.architecture')}.context_length", 2048)),
        **special,
        "additional_special_tokens": additional,
        "added_tokens_decoder": {
            str(i): {
                "content": tokens[i], "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": t == TOKEN_TYPE_CONTROL,
            }
            for i, t in enumerate(types)
            if t in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED)
        },
    }
    if "tokenizer.chat_template" in meta:
        config["chat_template"] = meta["tokenizer.chat_template"]
    _write_json(out_dir / "tokenizer_config.json", config)
    _write_json(out_dir / "special_tokens_map.json", {**special, "additional_special_tokens": additional})
    return {"vocab_size": tokenizer.get_vocab_size(), "special_tokens": len(control), **ids}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
