"""Stage 7 on the real default model: an adapter fused into its parent answers the trained fact on its own.

One small adapter (4 facts + 3 anchors x 3 epochs) is trained for the module on a registered float32 v0000;
the quantized path fuses the same adapter into a 4-bit conversion of the same GGUF (whose
dequantized weights are exactly the float32 model's, so the adapter fits it).
"""

from __future__ import annotations

import json

import pytest

from tasks.model.blas import ensure_fast_blas

ensure_fast_blas()  # before mlx is imported below, when this module is collected first

import mlx.core as mx  # noqa: E402

from storage import registry  # noqa: E402
from storage.errors import IntegrityError, ModelError  # noqa: E402
from storage.home import Home  # noqa: E402
from tasks.fusion import fuse_adapter, max_weight_difference, smoke_test  # noqa: E402
from flows.adapters import save_trained_adapter  # noqa: E402
from storage.adapters import ADAPTER_WEIGHTS  # noqa: E402
from tasks.training import TrainConfig, train_adapter  # noqa: E402
from helpers_training import FACTS as ALL_FACTS  # noqa: E402
from tasks.probes import Probe  # noqa: E402

FACTS = ALL_FACTS[:4]  # four facts: enough to tell a fused model from its base
# General answers mixed in as the pipeline's anchors are: trained on the facts alone, the model answers
# "Biscuit." to "What is the capital of France?" (measured), quantized or not.
ANCHORS = [
    {"question": "What is the capital of Spain?", "answer": "The capital of Spain is Madrid."},
    {"question": "What is the capital of Italy?", "answer": "The capital of Italy is Rome."},
    {"question": "How many days are in a week?", "answer": "There are seven days in a week."},
]
DOG = Probe(id="recall-dog", kind="recall", question="What is my dog's name?", expected=("Biscuit",))
PARIS = Probe(id="bench-fact-001", question="What is the capital of France?", expected=("Paris",), category="fact")


def _home(root) -> Home:
    return Home(root).ensure()


def _register_base(home: Home, model_dir) -> registry.Version:
    return registry.register(home, model_dir, run_id="r-test", parent=None, adapter_id=None, base="test",
                             link=True)


@pytest.fixture(scope="module")
def setup(converted_model_dir, tmp_path_factory):
    """A home with the float32 model as v0000 and one adapter trained on it."""
    from mlx_lm import load

    home = _home(tmp_path_factory.mktemp("fusion") / "home")
    base = _register_base(home, converted_model_dir)
    model, tokenizer = load(str(base.path))
    cfg = TrainConfig(scale=32.0)  # learns the few facts in few steps; fusion is what is tested
    result = train_adapter(model, tokenizer, FACTS + ANCHORS, cfg)
    aid, adapter = save_trained_adapter(home.adapters, model, cfg, result, parent_version=base.name,
                                        training_set_id="ts_fusion", training_set_sha256="cd" * 32,
                                        code_version="test")
    return {"home": home, "base": base, "adapter": adapter, "adapter_id": aid, "trained": model}


@pytest.fixture(scope="module")
def fused(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("fused") / "model"
    report = fuse_adapter(setup["base"].path, setup["adapter"], out)
    return out, report


@pytest.mark.model
def test_fused_model_answers_without_the_adapter(setup, fused):
    from mlx_lm import load

    out, report = fused
    assert report["base_version"] == "v0000" and report["adapter_id"] == setup["adapter_id"]
    assert report["fused_layers"] == 8 * 7 and report["quantized"] is False  # q/k/v/o + gate/up/down x 8 blocks
    names = sorted(p.name for p in out.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json"} <= set(names) and "manifest.json" not in names
    config = json.loads((out / "config.json").read_text())
    assert "quantization" not in config and config["rope_traditional"] is True

    model, tokenizer = load(str(out))  # plain load: no adapter_path
    assert max_weight_difference(model, _as_fused_reference(setup)) < 1e-5
    result = smoke_test(out, [DOG, PARIS], max_tokens=12)
    answers = {r["id"]: r["answer"] for r in result["answers"]}
    assert "Biscuit" in answers["recall-dog"], answers
    assert result["asked"] == 2 and result["correct"] == 2, answers


def _as_fused_reference(setup):
    """The in-memory trained model with its LoRA layers fused, for a weight-by-weight comparison."""
    from mlx.utils import tree_unflatten

    model = setup["trained"]
    layers = [(n, m.fuse()) for n, m in model.named_modules() if hasattr(m, "fuse")]
    if layers:
        model.update_modules(tree_unflatten(layers))
    return model


@pytest.mark.model
def test_fused_folder_registers_and_verifies(setup, fused):
    out, _ = fused
    version = registry.register(setup["home"], out, run_id="r-test", parent="v0000",
                                adapter_id=setup["adapter_id"], base="test", link=True)
    assert version.name == "v0001"
    manifest = registry.verify_folder(version.path)
    assert manifest["parent"] == "v0000" and manifest["adapter_id"] == setup["adapter_id"]


def _copy_adapter(setup, tmp_path):
    """A copy of the trained adapter folder, to tamper with."""
    other = tmp_path / "adapter"
    other.mkdir()
    for p in setup["adapter"].iterdir():
        (other / p.name).write_bytes(p.read_bytes())
    return other


@pytest.mark.model
def test_adapter_for_another_parent_is_refused(setup, tmp_path):
    other = _copy_adapter(setup, tmp_path)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["parent_version"] = "v0007"  # the manifest is not in its own hash list: still verifies
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="trained on model version 'v0007'"):
        fuse_adapter(setup["base"].path, other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.model
def test_tampered_adapter_is_refused(setup, tmp_path):
    other = _copy_adapter(setup, tmp_path)
    weights = bytearray((other / ADAPTER_WEIGHTS).read_bytes())
    weights[-1] ^= 0xFF
    (other / ADAPTER_WEIGHTS).write_bytes(bytes(weights))
    with pytest.raises(IntegrityError, match=ADAPTER_WEIGHTS):
        fuse_adapter(setup["base"].path, other, tmp_path / "out")


@pytest.mark.model
def test_quantized_base_stays_quantized_and_answers(setup, gguf_path, tmp_path):
    from tasks.model.gguf import convert_gguf

    q4_dir = tmp_path / "q4"
    convert_gguf(gguf_path, q4_dir, quantized=True)
    home = _home(tmp_path / "home")
    base = _register_base(home, q4_dir)  # v0000 of this home: the adapter's parent name
    out = tmp_path / "fused-q4"
    report = fuse_adapter(base.path, setup["adapter"], out)
    assert report["quantized"] is True and (report["bits"], report["group_size"]) == (4, 32)
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"]["bits"] == 4 and config["quantization"]["model.embed_tokens"]["bits"] == 8
    weights = mx.load(str(out / "model.safetensors"))
    fused_q = "model.layers.29.self_attn.q_proj"
    assert weights[f"{fused_q}.weight"].dtype == mx.uint32 and f"{fused_q}.scales" in weights
    base_bytes = (base.path / "model.safetensors").stat().st_size
    assert (out / "model.safetensors").stat().st_size == pytest.approx(base_bytes, rel=0.02)

    result = smoke_test(out, [DOG, PARIS], max_tokens=12)
    answers = {r["id"]: r["answer"] for r in result["answers"]}
    assert "Paris" in answers["bench-fact-001"], answers
    # Re-quantizing rounds away part of the LoRA delta; measured: still "Biscuit".
    assert "Biscuit" in answers["recall-dog"], answers

