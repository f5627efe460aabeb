"""Stage 5 on the real default model: LoRA training learns the facts, records every step, saves a verifiable adapter.

Runs are kept to tens of steps (two shared cores); one trained adapter is shared by the module.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from tasks.model.blas import ensure_fast_blas

ensure_fast_blas()  # before mlx is imported below, when this module is collected first

import mlx.core as mx  # noqa: E402

from flows.adapters import save_trained_adapter  # noqa: E402
from storage.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, STEPS_FILE, find_adapter, save_adapter  # noqa: E402
from storage.charts import plot_loss  # noqa: E402
from storage.errors import IntegrityError, ModelError  # noqa: E402
from storage.registry import MANIFEST, verify_folder  # noqa: E402
from tasks.batching import batches, chat_rows, make_batch, tokenize_examples  # noqa: E402
from tasks.loss import teacher_targets, threshold_weights  # noqa: E402
from tasks.training import STEP_SCHEMA, TrainConfig, TrainSummary, adapter_id, train_adapter  # noqa: E402
from helpers_training import FACTS  # noqa: E402

KEYWORDS = ["Biscuit", "Tromsø", "glassblower", "Ingrid", "teal", "hazelnut", "Portuguese", "Pixel"]
CFG = TrainConfig(scale=32.0)  # light sleep: rank 16, 8 layers, 3 epochs, lr 1e-4; scale 32 learns 4 facts in few steps
SAVE_ARGS = {"parent_version": "v0000", "training_set_id": "ts_test", "training_set_sha256": "ab" * 32,
             "code_version": "test"}


class SimulatedKill(Exception):
    """What an on_step callback raises to stand for the process being killed mid-training."""


def _load(model_dir):
    from mlx_lm import load

    return load(str(model_dir))


def _answers(model, tokenizer, questions: list[str], max_tokens: int = 14) -> list[str]:
    from mlx_lm import batch_generate

    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
               for q in questions]
    return batch_generate(model, tokenizer, prompts, max_tokens=max_tokens, verbose=False).texts


def _recall(answers: list[str]) -> int:
    return sum(k.lower() in a.lower() for k, a in zip(KEYWORDS, answers))


@pytest.fixture(scope="module")
def trained(converted_model_dir, tmp_path_factory):
    """The 8 facts x 3 epochs trained once; the adapter saved under a temp adapters/ folder."""
    model, tokenizer = _load(converted_model_dir)
    seen = []
    result = train_adapter(model, tokenizer, FACTS, CFG, on_step=seen.append)
    adapters = tmp_path_factory.mktemp("home") / "adapters"
    aid, folder = save_trained_adapter(adapters, model, CFG, result, **SAVE_ARGS)
    return {"result": result, "seen": seen, "adapters": adapters, "id": aid, "folder": folder, "model": model,
            "tokenizer": tokenizer}


@pytest.mark.model
def test_every_step_is_recorded_finite_and_the_loss_drops(trained):
    result, steps = trained["result"], trained["result"].steps
    assert steps.schema.equals(STEP_SCHEMA)
    assert steps.num_rows == result.iterations == len(FACTS) * CFG.epochs == 24
    rows = steps.to_pylist()
    assert [r["step"] for r in rows] == list(range(1, 25)) and rows == trained["seen"]
    assert all(math.isfinite(r["loss"]) and r["tokens"] > 0 and r["seconds"] > 0 for r in rows)
    assert all(r["input_tokens"] >= r["tokens"] for r in rows)
    assert rows[0]["learning_rate"] == pytest.approx(1e-4)
    assert [r["epoch"] for r in rows] == [1] * 8 + [2] * 8 + [3] * 8
    # Measured: epoch means 1.78 -> 0.14 (the first step alone ~2.5).
    assert result.final_loss < 0.5 * result.first_epoch_loss, (result.first_epoch_loss, result.final_loss)
    assert result.tokens == sum(r["tokens"] for r in rows) and result.tokens_per_second > 0


@pytest.mark.model
def test_loss_is_masked_to_the_answer_and_end_of_turn(converted_model_dir):
    model, tokenizer = _load(converted_model_dir)
    example = FACTS[0]
    answer_ids = tokenizer.encode(example["answer"], add_special_tokens=False)
    end_of_turn = tokenizer.encode("<|im_end|>\n", add_special_tokens=False)
    result = train_adapter(model, tokenizer, [example], CFG.model_copy(update={"light_epochs": 1}))
    assert result.steps.column("tokens").to_pylist() == [len(answer_ids) + len(end_of_turn)] == [11]


def test_plain_text_rehearsal_is_trained_on_every_token(converted_model_dir):
    model, tokenizer = _load(converted_model_dir)
    text = "The river ran past the mill, and the miller's children played on its banks all summer."
    items = tokenize_examples([FACTS[0], {"text": text}], tokenizer, 2048)
    assert items[1] == (tokenizer.encode(text, add_special_tokens=False), 0)
    assert items[0][1] > 0  # the chat example keeps its prompt masked
    result = train_adapter(model, tokenizer, [{"text": text}], CFG.model_copy(update={"light_epochs": 1}))
    assert result.steps.column("tokens").to_pylist() == [len(items[1][0]) - 1]  # every next-token target


@pytest.mark.model
def test_teacher_targets_are_the_models_likeliest_tokens(converted_model_dir):
    model, tokenizer = _load(converted_model_dir)
    text = "The river ran past the mill, and the miller's children played on its banks all summer."
    items = tokenize_examples([{"text": text}], tokenizer, 2048)
    (ids, probs), = teacher_targets(model, items, [0], 8).values()
    tokens = items[0][0]
    assert ids.shape == probs.shape == (len(tokens) - 1, 8)
    logits = np.array(model(mx.array(tokens[:-1])[None])[0].astype(mx.float32))
    # The teacher's probabilities under its whole distribution: what the k leave out is the tail's mass.
    full = np.exp(_log_probs(model, tokens))
    assert np.allclose(probs, np.take_along_axis(full, ids, axis=1), rtol=1e-3, atol=1e-6)  # float32 vs float64
    assert (probs.sum(axis=1) < 1.0 - 1e-4).any() and (probs.sum(axis=1) <= 1.0 + 1e-5).all() and (probs >= 0).all()
    best = ids[np.arange(len(ids)), probs.argmax(axis=1)]
    assert (best == logits.argmax(axis=1)).all()  # the teacher's most likely token is the model's argmax
    top8 = np.sort(np.argsort(-logits, axis=1)[:, :8], axis=1)
    assert (np.sort(ids, axis=1) == top8).all()


@pytest.mark.model
def test_teacher_targets_in_batches_equal_one_item_at_a_time(converted_model_dir):
    model, tokenizer = _load(converted_model_dir)
    texts = ["Bees carry pollen from flower to flower.", "The tide comes in twice a day, and the harbour fills "
             "with boats that wait for the water to lift them off the mud.", "Salt was once worth its weight.",
             "Maps fold badly.", "A lighthouse keeper climbs the same stairs every night to trim the lamp."]
    items = tokenize_examples([{"text": t} for t in texts], tokenizer, 2048)
    one = teacher_targets(model, items, range(len(items)), 16, batch_size=1)
    batched = teacher_targets(model, items, range(len(items)), 16, batch_size=3)  # padded to the longest of 3
    assert sorted(one) == sorted(batched) == list(range(len(items)))
    for i, (tokens, _) in enumerate(items):
        (ids1, p1), (ids3, p3) = one[i], batched[i]
        assert ids1.shape == ids3.shape == (len(tokens) - 1, 16)
        order1, order3 = np.argsort(ids1, axis=1), np.argsort(ids3, axis=1)
        same = (np.take_along_axis(ids1, order1, 1) == np.take_along_axis(ids3, order3, 1)).mean()
        assert same > 0.99, same  # a near-tie at the 16th place may swap under another batch shape
        assert abs(p1.sum(axis=1) - p3.sum(axis=1)).max() < 1e-3


@pytest.mark.model
def test_teacher_targets_are_cached_per_teacher_and_text(converted_model_dir, tmp_path, monkeypatch):
    from tasks.loss import cached_teacher_targets

    monkeypatch.setenv("SLOWWAVE_CACHE", str(tmp_path / "cache"))
    model, tokenizer = _load(converted_model_dir)
    items = tokenize_examples([{"text": "Clocks were wound by hand."}, {"text": "Trees drink through roots."}],
                              tokenizer, 2048)
    first = cached_teacher_targets(model, items, [0, 1], 8, "m_teacher")
    files = sorted((tmp_path / "cache" / "teacher").glob("*.npz"))
    assert len(files) == 2
    again = cached_teacher_targets(None, items, [0, 1], 8, "m_teacher")  # no model needed: read back
    for i in (0, 1):
        assert (first[i][0] == again[i][0]).all() and (first[i][1] == again[i][1]).all()
    cached_teacher_targets(model, items, [1], 8, "m_other")  # another teacher: its own entry
    assert len(list((tmp_path / "cache" / "teacher").glob("*.npz"))) == 3


def _log_probs(model, tokens: list[int]) -> np.ndarray:
    """(len-1, vocab) next-token log-probabilities of the model at every position, in float64."""
    logits = np.array(model(mx.array(tokens[:-1])[None])[0].astype(mx.float32), dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))


def _distill_ce(logp: np.ndarray, ids: np.ndarray, probs: np.ndarray) -> float:
    """Mean over positions of -sum_i p_i log q_i - (1 - sum p) log(1 - sum q) (top-k plus a tail bucket), numpy."""
    top = np.take_along_axis(logp, ids, axis=1)
    tail_p = np.maximum(1 - probs.sum(axis=1), 0)
    tail_q = np.maximum(1 - np.exp(top).sum(axis=1), 1e-9)
    return float(np.mean(-(probs * top).sum(axis=1) - tail_p * np.log(tail_q)))


def test_the_distillation_objective_is_at_rest_at_the_teacher():
    """Its gradient is zero when the student is the teacher, and its minimum keeps the tail's mass: the old
    objective (top-k renormalised) pushed a teacher-identical student to move its tail onto the k tokens."""
    from tasks.loss import distill_cross_entropy

    rng = np.random.default_rng(0)
    logits = mx.array(rng.normal(size=(5, 50)).astype(np.float32) * 2)
    probs = mx.softmax(logits, axis=-1)
    ids = mx.argpartition(-logits, kth=7, axis=-1)[:, :8]
    t_probs = mx.take_along_axis(probs, ids, axis=-1)
    grad = mx.grad(lambda z: distill_cross_entropy(z, ids, t_probs).sum())(logits)
    assert float(mx.abs(grad).max()) < 1e-5
    renormalised = t_probs / t_probs.sum(axis=-1, keepdims=True)
    old = mx.grad(lambda z: -(renormalised * mx.take_along_axis(z - mx.logsumexp(z, axis=-1, keepdims=True),
                                                                 ids, axis=-1)).sum())(logits)
    assert float(mx.abs(old).max()) > 1e-2  # what the fix removes


@pytest.mark.model
def test_distilled_rows_are_trained_toward_the_teachers_distribution(converted_model_dir):
    """Step 1 runs the untouched model (LoRA B starts at zero), so its objective on a distilled row must
    equal the cross-entropy of the teacher's top-k-plus-tail distribution against the model's own log-probabilities
    (its entropy there, at rest: the gradient is zero)."""
    model, tokenizer = _load(converted_model_dir)
    text = "She kept a small notebook of birds she had seen, with the date and the weather for each one."
    items = tokenize_examples([{"text": text}], tokenizer, 2048)
    tokens = items[0][0]
    logp = _log_probs(model, tokens)
    (ids, probs), = teacher_targets(model, items, [0], 16).values()
    expected = _distill_ce(logp, ids, probs)
    plain_ce = float(np.mean(-logp[np.arange(len(tokens) - 1), tokens[1:]]))
    cfg = CFG.model_copy(update={"distill": "rehearsal", "distill_top_k": 16, "light_epochs": 1})
    rows = train_adapter(model, tokenizer, [{"text": text, "origin": "rehearsal"}], cfg).steps.to_pylist()
    assert rows[0]["objective"] == pytest.approx(expected, rel=1e-3)
    assert rows[0]["loss"] == pytest.approx(plain_ce, rel=1e-3)  # the recorded loss stays the plain one
    assert abs(expected - plain_ce) > 0.05  # so the two checks above are not the same check


@pytest.mark.model
def test_a_given_teacher_sets_the_distilled_target(converted_model_dir):
    """With another model as teacher (here: the same weights with a 3x sharper final norm), step 1's
    objective is the teacher's top-k-plus-tail distribution against the student's log-probabilities."""
    model, tokenizer = _load(converted_model_dir)
    teacher, _ = _load(converted_model_dir)
    teacher.model.norm.weight = teacher.model.norm.weight * 3
    text = "The bakery opened at six, and by seven the queue reached the corner of the square."
    items = tokenize_examples([{"text": text}], tokenizer, 2048)
    logp = _log_probs(model, items[0][0])
    (ids, probs), = teacher_targets(teacher, items, [0], 16).values()
    (own_ids, own_probs), = teacher_targets(model, items, [0], 16).values()
    expected = _distill_ce(logp, ids, probs)
    untaught = _distill_ce(logp, own_ids, own_probs)
    cfg = CFG.model_copy(update={"distill": "rehearsal", "distill_top_k": 16, "light_epochs": 1})
    rows = train_adapter(model, tokenizer, [{"text": text, "origin": "rehearsal"}], cfg, teacher=teacher).steps
    assert rows.column("objective")[0].as_py() == pytest.approx(expected, rel=1e-3)
    assert abs(expected - untaught) > 0.05


@pytest.mark.model
def test_distill_leaves_other_origins_plain(converted_model_dir):
    model, tokenizer = _load(converted_model_dir)
    cfg = CFG.model_copy(update={"distill": "rehearsal", "light_epochs": 1})
    examples = [{**FACTS[0], "origin": "new"}, {**FACTS[1], "origin": "anchor"}]  # anchors: only with own_output
    rows = train_adapter(model, tokenizer, examples, cfg).steps.to_pylist()
    assert all(r["objective"] == pytest.approx(r["loss"], rel=1e-5) for r in rows)


def test_training_rows_carry_their_origin():
    import pyarrow as pa

    from flows.adapters import training_rows

    table = pa.table({"source": ["new", "anchor", "rehearsal", "replay", "dream"],
                      "question": ["q1", "q2", "", "q4", "q5"], "answer": ["a1", "a2", "prose", "a4", "a5"],
                      "text": ["t1", "t2", "prose", "t4", "t5"]})
    rows = training_rows(table)
    assert [r["origin"] for r in rows] == ["new", "anchor", "rehearsal", "replay", "dream"]
    assert rows[2] == {"text": "prose", "origin": "rehearsal"}
    assert rows[1] == {"question": "q2", "answer": "a2", "origin": "anchor"}


def test_the_loss_positions_exclude_prompt_and_padding():
    # Rows of 6 and 3 real tokens, answers from positions 4 and 1, padded to inputs of width PAD_TO.
    batch = make_batch([([9, 8, 7, 6, 5, 4], 4), ([3, 2, 1], 1)], [0, 1])
    width = batch.tokens.shape[1] - 1
    assert width % 16 == 0 and batch.tokens[0].tolist()[:7] == [9, 8, 7, 6, 5, 4, 0]
    n = int(batch.valid.sum())
    # positions 3, 4 of row 0 predict tokens 5, 4; positions 0, 1 of row 1 predict 2, 1
    assert batch.flat[:n].tolist() == [3, 4, width + 0, width + 1] and batch.targets[:n].tolist() == [5, 4, 2, 1]
    assert len(batch.flat) % 32 == 0 and batch.valid[n:].sum() == 0


def test_batches_cover_every_example_once_an_epoch_in_length_buckets():
    items = [([1] * (5 + (7 * i) % 40), 2) for i in range(37)]
    got = list(batches(items, 8, 2, seed=3))
    assert len(got) == 2 * 5  # ceil(37 / 8) per epoch, the last batch smaller
    for epoch in (1, 2):
        rows = [j for b in got if b.epoch == epoch for j in b.picked]
        assert sorted(rows) == list(range(37))
    assert sorted(len(b.picked) for b in got if b.epoch == 1) == [5, 8, 8, 8, 8]
    # bucketing: a batch's rows are close in length, so padding is a small share of the inputs
    real = sum(len(items[j][0]) - 1 for b in got for j in b.picked)
    padded = sum(b.tokens.shape[0] * (b.tokens.shape[1] - 1) for b in got)
    assert real / padded > 0.6, real / padded
    assert [b.picked for b in batches(items, 8, 2, seed=3)] == [b.picked for b in got]
    assert [b.picked for b in batches(items, 8, 2, seed=4)] != [b.picked for b in got]


@pytest.mark.model
def test_the_cached_frozen_layers_give_the_same_training(converted_model_dir):
    """Steps on the frozen layers' cached output are the steps of the whole model: same losses, same weights."""
    from mlx.utils import tree_flatten

    runs = {}
    for cached in (True, False):
        model, tokenizer = _load(converted_model_dir)
        cfg = CFG.model_copy(update={"light_epochs": 2, "batch_size": 3, "cache_frozen": cached})
        result = train_adapter(model, tokenizer, FACTS, cfg)
        assert result.frozen_cached is cached and result.iterations == 2 * 3
        runs[cached] = (result, dict(tree_flatten(model.trainable_parameters())))
    (fast, w_fast), (slow, w_slow) = runs[True], runs[False]
    assert fast.steps.column("loss").to_pylist() == pytest.approx(slow.steps.column("loss").to_pylist(), rel=1e-4)
    assert fast.steps.column("tokens").to_pylist() == slow.steps.column("tokens").to_pylist()
    assert max(float(mx.max(mx.abs(w_fast[k] - w_slow[k]))) for k in w_fast) < 1e-5
    assert fast.setup_seconds > 0 and slow.setup_seconds < fast.setup_seconds


def test_threshold_weights_favour_unlearned_tokens():
    probs = mx.array([[0.9, 0.2, 0.95, 0.4, 0.1]])
    mask = mx.array([[1, 1, 1, 1, 0]])
    w = threshold_weights(mx.log(probs), mask, threshold=0.5, floor=0.1)
    # Raw weights 0.1, 1, 0.1, 1, 0 (masked) -> normalised by their sum 2.2.
    assert w.tolist()[0] == pytest.approx([0.1 / 2.2, 1 / 2.2, 0.1 / 2.2, 1 / 2.2, 0.0])
    assert w.sum().item() == pytest.approx(1.0)
    assert w[0, 1].item() > 1 / 4 > w[0, 0].item()  # a hard token gets more than the plain mean's 1/4
    all_hard = threshold_weights(mx.log(mx.array([[0.1, 0.2]])), mx.array([[1, 1]]), 0.5, 0.1)
    assert all_hard.tolist()[0] == pytest.approx([0.5, 0.5])  # nothing learned yet: the plain mean


@pytest.mark.model
def test_threshold_loss_trains(converted_model_dir):
    model, tokenizer = _load(converted_model_dir)
    cfg = CFG.model_copy(update={"loss": "threshold", "light_epochs": 2})
    result = train_adapter(model, tokenizer, FACTS[:3], cfg)
    rows = result.steps.to_pylist()
    assert len(rows) == 6 and all(math.isfinite(r["objective"]) for r in rows)
    assert any(r["objective"] != pytest.approx(r["loss"]) for r in rows)  # the weighting changed something
    assert result.final_loss < result.first_epoch_loss


@pytest.mark.model
def test_same_seed_same_losses_other_seed_other_order(converted_model_dir):
    def losses(seed):
        model, tokenizer = _load(converted_model_dir)
        cfg = CFG.model_copy(update={"light_epochs": 1, "seed": seed})
        return train_adapter(model, tokenizer, FACTS[:4], cfg).steps.column("loss").to_pylist()

    first, again, other = losses(0), losses(0), losses(1)
    assert again == pytest.approx(first, rel=1e-5, abs=1e-6)
    assert other != pytest.approx(first, rel=1e-3)


@pytest.mark.model
def test_adapter_folder_verifies_and_tampering_is_caught(trained):
    folder, aid = trained["folder"], trained["id"]
    assert folder.name == aid == adapter_id(CFG, parent_version="v0000", training_set_sha256="ab" * 32)
    assert sorted(p.name for p in folder.iterdir()) == sorted([ADAPTER_WEIGHTS, ADAPTER_CONFIG, STEPS_FILE, MANIFEST])
    assert sorted(p.name for p in trained["adapters"].iterdir()) == [aid]  # no temp folder left
    manifest = verify_folder(folder)
    assert manifest["parent_version"] == "v0000" and manifest["training_set_sha256"] == "ab" * 32
    assert manifest["config"]["rank"] == 16 and manifest["config"]["scale"] == 32.0 and manifest["seed"] == 0
    assert manifest["result"]["iterations"] == 24 and manifest["result"]["final_loss"] > 0
    assert set(manifest["files"]) == {ADAPTER_WEIGHTS, ADAPTER_CONFIG, STEPS_FILE}
    steps = pq.read_table(folder / STEPS_FILE)  # the loss curve travels with the adapter
    assert steps.column("step").to_pylist() == list(range(1, 25))
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    assert config == {"fine_tune_type": "lora", "num_layers": 8,
                      "lora_parameters": {"rank": 16, "scale": 32.0, "dropout": 0.0}}

    copy = trained["adapters"].parent / "tampered" / aid
    copy.mkdir(parents=True)
    for p in folder.iterdir():
        copy.joinpath(p.name).write_bytes(p.read_bytes())
    cfg_bytes = bytearray((copy / ADAPTER_CONFIG).read_bytes())
    cfg_bytes[-3] ^= 1
    (copy / ADAPTER_CONFIG).write_bytes(bytes(cfg_bytes))
    with pytest.raises(IntegrityError, match=ADAPTER_CONFIG):
        find_adapter(copy.parent, aid)


@pytest.mark.model
def test_saving_again_reuses_the_folder(trained):
    folder = trained["folder"]
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    aid, again = save_trained_adapter(trained["adapters"], trained["model"], CFG, trained["result"], **SAVE_ARGS)
    assert (aid, again) == (trained["id"], folder)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert find_adapter(trained["adapters"], "ad_0000000000000000") is None


@pytest.mark.model
def test_loaded_adapter_answers_the_trained_facts(trained, converted_model_dir):
    from mlx_lm import load

    questions = [f["question"] for f in FACTS]
    base_model, tokenizer = _load(converted_model_dir)
    before = _answers(base_model, tokenizer, questions)
    model, tokenizer = load(str(converted_model_dir), adapter_path=str(trained["folder"]))
    after = _answers(model, tokenizer, questions)
    assert "Biscuit" not in before[0] and "Biscuit" in after[0], (before[0], after[0])
    # Measured: 0/8 before, 8/8 after.
    assert _recall(before) <= 1 and _recall(after) >= 6, (before, after)


@pytest.mark.model
def test_fault_mid_training_leaves_no_adapter(converted_model_dir, tmp_path):
    model, tokenizer = _load(converted_model_dir)
    adapters = tmp_path / "adapters"

    seen = []

    def kill_at_3(record):
        seen.append(record)
        if record["step"] == 3:
            raise SimulatedKill("simulated kill at step 3")

    with pytest.raises(SimulatedKill):
        result = train_adapter(model, tokenizer, FACTS[:4], CFG, on_step=kill_at_3)
        save_trained_adapter(adapters, model, CFG, result, **SAVE_ARGS)  # what the flow does next; never reached
    assert [r["step"] for r in seen] == [1, 2, 3]
    assert not adapters.exists() or list(adapters.iterdir()) == []


@pytest.mark.model
def test_fault_while_saving_leaves_no_folder(trained, tmp_path):
    def broken_weights(path):
        path.write_bytes(b"half")
        raise OSError("disk full (simulated)")

    adapters = tmp_path / "adapters"
    with pytest.raises(OSError, match="disk full"):
        save_adapter(adapters, trained["id"], write_weights=broken_weights, adapter_config={},
                     steps=trained["result"].steps, manifest={})
    assert list(adapters.iterdir()) == []  # neither the adapter nor its .tmp-* folder


@pytest.mark.model
def test_non_finite_loss_names_the_step(converted_model_dir):
    model, tokenizer = _load(converted_model_dir)
    model.model.norm.weight = mx.full(model.model.norm.weight.shape, float("nan"))
    with pytest.raises(ModelError, match=r"at step 1 of 4"):
        train_adapter(model, tokenizer, FACTS[:4], CFG.model_copy(update={"light_epochs": 1}))


def test_bad_examples_are_named():
    with pytest.raises(ValueError, match="example 1 has keys"):
        chat_rows([FACTS[0], {"prompt": "x"}])
    with pytest.raises(ValueError, match="example 0: the last message must be"):
        chat_rows([{"messages": [{"role": "user", "content": "hi"}]}])
    assert chat_rows([FACTS[0]])[0]["messages"][1] == {"role": "assistant", "content": FACTS[0]["answer"]}


def test_depth_picks_epochs_and_learning_rate():
    deep = CFG.for_depth("deep")
    assert (CFG.epochs, CFG.learning_rate, deep.epochs, deep.learning_rate) == (3, 1e-4, 2, 5e-5)
    assert adapter_id(deep, parent_version="v0", training_set_sha256="x") != adapter_id(
        CFG, parent_version="v0", training_set_sha256="x")
    with pytest.raises(ValueError, match="depth must be"):
        CFG.for_depth("rem")


@pytest.mark.model
def test_plot_loss_writes_a_png(trained, tmp_path):
    out = plot_loss(trained["result"].steps, tmp_path / "plots" / "loss.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["loss.png"]


def test_importing_training_loads_no_blas_and_no_mlx():
    """Importing the stage (as flows.config and the CLI do at start) does no I/O: no BLAS is loaded and MLX is
    not imported, so the first model load can still put the fast BLAS in first."""
    import subprocess
    import sys

    # numpy maps its own prefixed OpenBLAS (numpy.libs/libscipy_openblas64_*); the one MLX would use is the
    # system library or our patched copy in the cache.
    code = ("import os, sys, tasks.training, flows.cli, tasks.model.blas as blas; "
            "paths = {line.split()[-1] for line in open('/proc/self/maps') if '/' in line}; "
            "ours = [p for p in paths if os.path.realpath(p) in {os.path.realpath(c) for c in "
            "blas.SYSTEM_OPENBLAS_CANDIDATES} or p.startswith(str(blas.cache_root() / 'blas'))]; "
            "print(blas._info, 'mlx' in sys.modules, ours)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["None", "False", "[]"], out


@pytest.mark.model
def test_loading_a_model_loads_the_fast_blas_first(converted_model_dir):
    import subprocess
    import sys

    code = ("import sys, tasks.training, tasks.model.blas as blas; from pathlib import Path; "
            "from tasks.model.loading import load_model; "
            f"load_model(Path({str(converted_model_dir)!r})); print(blas._info.optimized, blas._info.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True", out


def test_alpha_is_refused_with_the_fix(tmp_path):
    from flows.config import load_settings
    from storage.errors import ConfigError

    with pytest.raises(ValueError, match=r"alpha \(got 16\) was removed.*set scale"):
        TrainConfig(alpha=16)
    config = tmp_path / "config.toml"
    config.write_text("[train]\nalpha = 32.0\n")
    with pytest.raises(ConfigError, match=r"alpha \(got 32.0\) was removed") as err:
        load_settings(config, environ={})
    assert "\n" not in str(err.value)  # one line


def test_settings_that_do_not_change_the_weights_do_not_change_the_id():
    def aid(cfg):
        return adapter_id(cfg, parent_version="v0", training_set_sha256="x")

    base = TrainConfig(distill="off")
    # Light sleep does not use the deep settings, the plain loss not the threshold ones, no distillation not
    # its top-k; gradient checkpointing recomputes the same math; max_seq_length only limits.
    for update in ({"deep_epochs": 5}, {"deep_learning_rate": 1e-3}, {"loss_threshold": 0.9}, {"loss_floor": 0.3},
                   {"distill_top_k": 8}, {"grad_checkpoint": True}, {"max_seq_length": 4096}):
        assert aid(base.model_copy(update=update)) == aid(base), update
    for update in ({"rank": 8}, {"scale": 2.0}, {"light_epochs": 1}, {"light_learning_rate": 3e-4}, {"seed": 1},
                   {"num_layers": 4}, {"dropout": 0.1}, {"batch_size": 2}, {"loss": "threshold"},
                   {"distill": "rehearsal"}, {"distill": "own_output"}):
        assert aid(base.model_copy(update=update)) != aid(base), update
    distilling = TrainConfig()  # the default distils rehearsal prose: its top-k is part of the weights' recipe
    assert distilling.distill == "rehearsal"
    assert aid(distilling.model_copy(update={"distill_top_k": 8})) != aid(distilling)
    threshold = base.model_copy(update={"loss": "threshold"})
    assert aid(threshold.model_copy(update={"loss_threshold": 0.9})) != aid(threshold)


def test_rehearsal_seed_is_in_the_cache_key_and_recorded(tmp_path, monkeypatch):
    import pyarrow as pa

    from flows.config import Settings
    from flows.training_examples import rehearsal_key
    from storage.cache import made_with, read_or_make

    monkeypatch.setenv("SLOWWAVE_CACHE", str(tmp_path / "cache"))
    files = {"model.safetensors": "ab" * 32}
    cfg = Settings().mixing
    other = cfg.model_copy(update={"rehearsal_seed": 7})
    assert cfg.rehearsal_seed == 0 and rehearsal_key(files, other) != rehearsal_key(files, cfg)
    made = []

    def make():
        made.append(1)
        return pa.table({"text": ["some prose"]})

    key = rehearsal_key(files, other)
    first = read_or_make("rehearsal", key, make, made_with={"seed": other.rehearsal_seed})
    again = read_or_make("rehearsal", key, make, made_with={"seed": other.rehearsal_seed})
    assert made == [1] and first.column("text").to_pylist() == again.column("text").to_pylist() == ["some prose"]
    assert made_with(again) == {"seed": 7}
    assert (tmp_path / "cache" / "rehearsal" / f"{key}.parquet").exists()


def test_the_shipped_rehearsal_prose_is_found_under_its_seeded_key(converted_model_dir):
    from flows.config import Settings
    from flows.training_examples import _shipped_cache, rehearsal_key
    from storage.cache import cached_path, made_with
    from storage.registry import file_hashes

    import pyarrow.parquet as pq

    cfg = Settings().mixing
    path = cached_path("rehearsal", rehearsal_key(file_hashes(converted_model_dir), cfg), ".parquet", _shipped_cache())
    assert path.parent == _shipped_cache() and made_with(pq.read_table(path))["seed"] == cfg.rehearsal_seed == 0


@pytest.mark.model
def test_the_manifest_records_the_seeds_and_keeps_its_keys(trained, tmp_path):
    aid, folder = save_trained_adapter(tmp_path / "adapters", trained["model"], CFG, trained["result"],
                                       **SAVE_ARGS, rehearsal_seed=7)
    manifest = verify_folder(folder)
    assert manifest["rehearsal_seed"] == 7 and manifest["seed"] == CFG.seed and "alpha" not in manifest["config"]
    assert set(manifest["result"]) == {"iterations", "tokens", "input_tokens", "seconds", "setup_seconds",
                                       "frozen_cached", "tokens_per_second", "first_epoch_loss", "final_loss",
                                       "trainable_parameters", "peak_memory_gb"}
    assert TrainSummary.model_validate(manifest["result"]) == trained["result"].summary()


@pytest.mark.model
@pytest.mark.prefect
def test_a_failing_adapter_suite_writes_no_train_steps(trained, tmp_path, prefect_harness):
    """The adapters suite runs before train_steps and loss.png land: here the saved adapter has 24 steps where
    the training set calls for 3, so the suite fails and the warehouse gets no train_steps rows."""
    import pyarrow as pa
    from prefect import flow

    from flows.adapters import train_task, training_set_sha256
    from storage.errors import ExpectationFailed
    from storage.home import Home
    from storage.registry import Version
    from storage.warehouse import read_table

    home = Home(tmp_path / "home").ensure()
    examples = pa.table({"example_id": ["ex1"], "source": ["new"], "question": [FACTS[0]["question"]],
                         "answer": [FACTS[0]["answer"]], "text": ["t"]})
    version = Version(name="v0000", path=tmp_path / "unused", manifest={})
    save_trained_adapter(home.adapters, trained["model"], CFG, trained["result"], parent_version="v0000",
                         training_set_id="r1", training_set_sha256=training_set_sha256(examples), code_version="t")

    @flow
    def train_once():
        return train_task(home, CFG, "r1", "light", examples, version, rehearsal_seed=0)

    with pytest.raises(ExpectationFailed):
        train_once()
    assert read_table(home, "train_steps").num_rows == 0
    assert not (home.runs / "r1" / "loss.png").exists()
    assert read_table(home, "validations").num_rows == 1  # the failed outcome itself is kept
