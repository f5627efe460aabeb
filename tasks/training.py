"""Stage 5: LoRA-train the current model on the night's training examples; save the adapter as an immutable folder.

The loop is mlx-lm's `tuner.trainer.train` step (a compiled value-and-grad + Adam update over
`ChatDataset(mask_prompt=True)` batches), written out here so that every step is recorded, seeded,
checked for a finite loss and interruptible by a test hook. It differs from mlx-lm in one place on
purpose: mlx-lm's `default_loss` also trains each row to predict one padding token after its last
token (`steps <= length`; mlx-lm PR #1697); ours masks exactly the answer plus its end-of-turn tokens.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from storage.atomic import atomic_dir, atomic_path
from storage.errors import IntegrityError, ModelError
from storage.ids import content_id
from storage.registry import MANIFEST, file_hashes, verify_folder
from storage.runs import utcnow
from tasks.model.blas import ensure_fast_blas

ensure_fast_blas()  # before mlx: the bundled reference BLAS makes a training step ~15x slower

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import mlx.optimizers as optim  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402
from mlx_lm.tuner.datasets import CacheDataset, ChatDataset  # noqa: E402
from mlx_lm.tuner.utils import linear_to_lora_layers  # noqa: E402

ADAPTER_WEIGHTS = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
STEPS_FILE = "train_steps.parquet"
PAD_TO = 32  # as mlx-lm: few distinct batch widths, so the compiled step is traced only a few times
STEP_SCHEMA = pa.schema([
    ("step", pa.int64()), ("epoch", pa.int64()), ("loss", pa.float64()), ("objective", pa.float64()),
    ("tokens", pa.int64()), ("input_tokens", pa.int64()), ("seconds", pa.float64()),
    ("learning_rate", pa.float64()),
])
Depth = Literal["light", "deep"]
# train.distill -> the example origins (training_examples.source) trained toward the teacher's distribution.
DISTILLED = {"off": (), "rehearsal": ("rehearsal",), "own_output": ("rehearsal", "anchor")}


class TrainConfig(BaseModel):
    """LoRA hyperparameters of one night's training (light and deep sleep differ in epochs and rate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    depth: Depth = Field("light", description="Which of the light_/deep_ epochs and learning rate apply; the "
                         "flow sets it per run with for_depth().")
    rank: int = Field(16, ge=1, description="LoRA rank r (the source paper's 16; mlx-lm's default is 8).")
    alpha: float = Field(32.0, gt=0, description="The paper's LoRA alpha, kept for reference only: PEFT would "
                         "scale by alpha/rank = 2.0, but mlx-lm multiplies by `scale` directly (see scale).")
    scale: float = Field(8.0, gt=0, description="Multiplier on the LoRA output, passed to mlx-lm as-is (under "
                         "Adam it acts like a step size; the paper's alpha taken literally would be 32, PEFT's "
                         "alpha/rank 2.0). Measured, light sleep on the shared fixtures with anchors and "
                         "rehearsal (171 steps, lr 1e-4): scale 32 recalled 3/3 held-out wordings but benchmark "
                         "ratio 0.80 and perplexity +56% (rejected); scale 8: 2/3, ratio 0.85, +31% (approved); "
                         "scale 4 at lr 3e-4: 2/3, 0.90, +40%.")
    num_layers: int = Field(8, ge=1, description="LoRA on the linear layers of the last N transformer blocks.")
    batch_size: int = Field(1, ge=1, description="Examples per step; iterations = examples x epochs / batch_size.")
    light_epochs: int = Field(3, ge=1, description="Passes over the training set in light sleep.")
    deep_epochs: int = Field(2, ge=1, description="Passes over the training set in deep sleep.")
    light_learning_rate: float = Field(1e-4, gt=0, description="Adam learning rate in light sleep (constant).")
    deep_learning_rate: float = Field(5e-5, gt=0, description="Adam learning rate in deep sleep (constant).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    max_seq_length: int = Field(2048, ge=8, description="Longest tokenized example allowed; a longer one is an "
                                "error, not silently truncated (truncation could cut the whole answer).")
    seed: int = Field(0, description="Seeds the LoRA initialisation (mx.random) and the data order.")
    loss: Literal["plain", "threshold"] = Field("plain", description="'plain': mean cross-entropy over answer "
                                                "tokens. 'threshold': MemFT-style, see threshold_weights(); on 8 "
                                                "facts x 3 epochs it recalled 5/8 vs plain 8/8, so not the default.")
    loss_threshold: float = Field(0.5, gt=0, le=1, description="Threshold loss: an answer token whose target "
                                  "probability is below this still breaks greedy recall and gets weight 1.")
    loss_floor: float = Field(0.1, ge=0, le=1, description="Threshold loss: weight of tokens already above "
                              "loss_threshold (before normalising the weights to sum to 1).")
    distill: Literal["off", "rehearsal", "own_output"] = Field("off", description="Which examples are trained "
                          "toward a teacher's whole next-token distribution (its top distill_top_k tokens per "
                          "position, computed before training; in a sleep the root model, whose text they are) "
                          "instead of toward the one token in the text: 'rehearsal' (the model's own prose), "
                          "'own_output' (its prose and its anchor answers) or 'off'. The teacher is then the "
                          "exact optimum of those examples, so they hold the model there without pulling it "
                          "toward their sampled tokens. Measured in docs/RESULTS.md: drift halves, but 1-2 "
                          "control answers broke on the labelled case, so it is off by default.")
    distill_top_k: int = Field(32, ge=1, description="Teacher tokens kept per position when distilling.")
    grad_checkpoint: bool = Field(False, description="Recompute activations in backward (less memory, ~30% "
                                  "slower); patches the layer class process-wide, as mlx-lm does.")

    @property
    def epochs(self) -> int:
        """Epochs for this config's depth."""
        return self.light_epochs if self.depth == "light" else self.deep_epochs

    @property
    def learning_rate(self) -> float:
        """Learning rate for this config's depth."""
        return self.light_learning_rate if self.depth == "light" else self.deep_learning_rate

    def for_depth(self, depth: Depth) -> "TrainConfig":
        """A copy of this config for a sleep depth."""
        if depth not in ("light", "deep"):
            raise ValueError(f"depth must be 'light' or 'deep', got {depth!r}")
        return self.model_copy(update={"depth": depth})

    def lora_parameters(self) -> dict:
        """The `lora_parameters` mlx-lm's linear_to_lora_layers and adapter_config.json expect."""
        return {"rank": self.rank, "scale": self.scale, "dropout": self.dropout}


@dataclass(frozen=True)
class TrainResult:
    """What one training run did, step by step and in total."""

    steps: pa.Table  # STEP_SCHEMA; the flow adds run_id and adapter_id for the train_steps table
    iterations: int
    tokens: int  # answer tokens the loss was computed on (mlx-lm's "trained tokens", minus its pad target)
    input_tokens: int  # padded tokens fed through the model
    seconds: float  # time inside training steps (compile included), as mlx-lm's train_time
    first_epoch_loss: float
    final_loss: float  # mean loss over the last epoch: one step's loss is one example's
    trainable_parameters: int
    peak_memory_gb: float

    @property
    def tokens_per_second(self) -> float:
        """Answer tokens trained per second of step time."""
        return self.tokens / self.seconds if self.seconds else 0.0

    def summary(self) -> dict:
        """The run in numbers, for manifests and run summaries."""
        return {"iterations": self.iterations, "tokens": self.tokens, "input_tokens": self.input_tokens,
                "seconds": round(self.seconds, 3), "tokens_per_second": round(self.tokens_per_second, 2),
                "first_epoch_loss": self.first_epoch_loss, "final_loss": self.final_loss,
                "trainable_parameters": self.trainable_parameters, "peak_memory_gb": round(self.peak_memory_gb, 3)}


def chat_rows(examples: list[dict]) -> list[dict]:
    """mlx-lm chat rows {"messages": [...]} from {"question", "answer"} or {"messages"} examples."""
    rows = []
    for i, ex in enumerate(examples):
        if "messages" in ex:
            messages = list(ex["messages"])
        elif "question" in ex and "answer" in ex:
            messages = [{"role": "user", "content": ex["question"]}, {"role": "assistant", "content": ex["answer"]}]
        else:
            raise ValueError(f"training example {i} has keys {sorted(ex)}; need question+answer or messages")
        if not messages or messages[-1].get("role") != "assistant" or not str(messages[-1].get("content", "")).strip():
            raise ValueError(f"training example {i}: the last message must be a non-empty assistant answer "
                             "(only it is trained)")
        rows.append({"messages": messages})
    return rows


def tokenize_examples(examples: list[dict], tokenizer, max_seq_length: int) -> list[tuple[list[int], int]]:
    """(tokens, answer offset) per example: chat examples via mlx-lm's ChatDataset with the prompt masked;
    plain-text examples ({"text": ...}, rehearsal of the model's own prose) trained on every token."""
    chats = [(i, ex) for i, ex in enumerate(examples) if not ex.get("text")]
    items: list[tuple[list[int], int] | None] = [None] * len(examples)
    if chats:
        dataset = CacheDataset(ChatDataset(chat_rows([ex for _, ex in chats]), tokenizer, mask_prompt=True))
        for k, (i, _) in enumerate(chats):
            items[i] = dataset[k]
    for i, ex in enumerate(examples):
        if ex.get("text"):
            tokens = tokenizer.encode(ex["text"], add_special_tokens=False)
            if len(tokens) < 2:
                raise ValueError(f"training example {i}: plain text of {len(tokens)} token(s), need at least 2")
            items[i] = (tokens, 0)
    for i, (tokens, offset) in enumerate(items):
        if len(tokens) > max_seq_length:
            raise ValueError(f"training example {i} is {len(tokens)} tokens, over max_seq_length={max_seq_length}; "
                             "raise max_seq_length or shorten the example")
    return items


def teacher_targets(model, items: list[tuple[list[int], int]], indices,
                    k: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{item index: (token ids, probabilities)}, each (length-1, k): the model's k likeliest next tokens at every
    position of those items and their probabilities renormalised over the k. Run before LoRA is added."""
    out = {}
    for i in indices:
        tokens, _ = items[i]
        logits = model(mx.array(tokens[:-1])[None])[0].astype(mx.float32)
        ids = mx.argpartition(-logits, kth=k - 1, axis=-1)[:, :k]
        probs = mx.softmax(mx.take_along_axis(logits, ids, axis=-1), axis=-1)
        mx.eval(ids, probs)
        out[i] = (np.array(ids, dtype=np.int32), np.array(probs, dtype=np.float32))
    return out


def _batches(items: list[tuple[list[int], int]], batch_size: int, epochs: int, seed: int,
             teachers: dict[int, tuple[np.ndarray, np.ndarray]] | None = None):
    """(epoch, batch, lengths, teacher) per step: a fresh seeded permutation each epoch, rows zero-padded as
    mlx-lm; teacher is () without teachers, else (ids, probabilities, distilled rows), zero where not distilled."""
    rng = np.random.default_rng(seed)
    k = next(iter(teachers.values()))[0].shape[1] if teachers else 0
    per_epoch = len(items) // batch_size
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(items))
        for b in range(per_epoch):
            picked = [int(j) for j in order[b * batch_size:(b + 1) * batch_size]]
            rows = [items[j] for j in picked]
            longest = max(len(t) for t, _ in rows)
            width = 1 + PAD_TO * ((longest + PAD_TO - 1) // PAD_TO)  # inputs = width-1, a multiple of 32
            arr = np.zeros((len(rows), width), np.int32)
            for r, (tokens, _) in enumerate(rows):
                arr[r, :len(tokens)] = tokens
            teacher = ()
            if teachers:
                t_ids = np.zeros((len(rows), width - 1, k), np.int32)
                t_probs = np.zeros((len(rows), width - 1, k), np.float32)
                for r, j in enumerate(picked):
                    if j in teachers:
                        ids, probs = teachers[j]
                        t_ids[r, :len(ids)], t_probs[r, :len(probs)] = ids, probs
                teacher = (mx.array(t_ids), mx.array(t_probs), mx.array([j in teachers for j in picked]))
            yield epoch, mx.array(arr), mx.array([[off, len(t)] for t, off in rows]), teacher


def answer_mask(lengths: mx.array, width: int) -> mx.array:
    """1 where target position p (targets = batch[:, 1:]) satisfies offset <= p < length, else 0."""
    positions = mx.arange(1, width + 1)
    return mx.logical_and(positions >= lengths[:, 0:1], positions < lengths[:, 1:])


def threshold_weights(target_logprobs: mx.array, mask: mx.array, threshold: float, floor: float) -> mx.array:
    """MemFT weights: 1 where p(target) < threshold (greedy recall fails there), else floor; 0 off the
    mask; normalised to sum to 1 and held constant in backward.

    With every token unlearned this is the plain mean; once most of an answer is memorised the
    remaining hard tokens (e.g. the name itself) carry most of the gradient instead of 1/n of it.
    """
    maskf = mask.astype(mx.float32)
    raw = mx.where(mx.exp(target_logprobs) < threshold, 1.0, floor) * maskf
    return mx.stop_gradient(raw / mx.maximum(raw.sum(), 1e-12))


def make_loss(cfg: TrainConfig) -> Callable:
    """loss(model, batch, lengths, *teacher) -> (objective, answer tokens, plain mean cross-entropy on the actual
    tokens). With teacher = (ids, probs, distilled rows) the objective's per-token term on distilled rows is
    the cross-entropy against the teacher's top-k distribution instead of against the one token in the text."""
    def loss(model, batch, lengths, *teacher):
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = model(inputs).astype(mx.float32)
        ce = nn.losses.cross_entropy(logits, targets)
        mask = answer_mask(lengths, targets.shape[1])
        ntoks = mask.sum()
        plain = (ce * mask).sum() / ntoks
        per_token = ce
        if teacher:
            t_ids, t_probs, distilled = teacher
            logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
            soft = -(t_probs * mx.take_along_axis(logp, t_ids, axis=-1)).sum(axis=-1)
            per_token = mx.where(distilled[:, None], soft, ce)
        if cfg.loss == "plain":
            # Without teachers the objective is `plain` itself: computing the same sum a second time makes
            # mx.compile merge the two into one output, which it then cannot map back (IndexError).
            return ((per_token * mask).sum() / ntoks if teacher else plain), ntoks, plain
        weights = threshold_weights(-ce, mask, cfg.loss_threshold, cfg.loss_floor)
        return (weights * per_token).sum(), ntoks, plain

    return loss


def train_adapter(model, tokenizer, examples: list[dict], cfg: TrainConfig, *, teacher=None,
                  on_step: Callable[[dict], None] | None = None,
                  fault_hook: Callable[[int], None] | None = None) -> TrainResult:
    """Add LoRA layers to `model` in place and train them on the examples; return every step's record.

    `teacher` gives the distribution distilled examples are trained toward (train.distill); by default the
    model itself as it is before training."""
    items = tokenize_examples(examples, tokenizer, cfg.max_seq_length)
    if len(items) < cfg.batch_size:
        raise ValueError(f"{len(items)} training examples, fewer than batch_size={cfg.batch_size}")
    iterations = (len(items) // cfg.batch_size) * cfg.epochs
    own = [i for i, ex in enumerate(examples) if ex.get("origin") in DISTILLED[cfg.distill]]
    teachers = teacher_targets(model if teacher is None else teacher, items, own, cfg.distill_top_k) if own else {}
    mx.random.seed(cfg.seed)  # the LoRA A matrices are drawn from mx.random
    model.freeze()
    linear_to_lora_layers(model, cfg.num_layers, cfg.lora_parameters())
    if cfg.grad_checkpoint:
        from mlx_lm.tuner.trainer import grad_checkpoint
        grad_checkpoint(model.layers[0])
    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    optimizer = optim.Adam(learning_rate=cfg.learning_rate)
    value_and_grad = nn.value_and_grad(model, make_loss(cfg))
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(batch, lengths, *teacher):  # without teachers the compiled graph is mlx-lm's step
        (objective, ntoks, plain), grad = value_and_grad(model, batch, lengths, *teacher)
        optimizer.update(model, grad)
        return objective, ntoks, plain

    mx.reset_peak_memory()
    model.train()
    records = []
    try:
        batches = _batches(items, cfg.batch_size, cfg.epochs, cfg.seed, teachers)
        for it, (epoch, batch, lengths, targets) in enumerate(batches, 1):
            tic = time.perf_counter()
            objective, ntoks, plain = step(batch, lengths, *targets)
            mx.eval(state, objective, ntoks, plain)
            seconds = time.perf_counter() - tic
            record = {"step": it, "epoch": epoch, "loss": plain.item(), "objective": objective.item(),
                      "tokens": int(ntoks.item()), "input_tokens": int(batch.shape[0] * (batch.shape[1] - 1)),
                      "seconds": seconds, "learning_rate": optimizer.learning_rate.item()}
            if not (math.isfinite(record["loss"]) and math.isfinite(record["objective"])):
                raise ModelError(f"training loss is {record['loss']} at step {it} of {iterations} (epoch {epoch}); "
                                 f"lower the learning rate (now {cfg.learning_rate:g}) or check the model's weights")
            records.append(record)
            if on_step is not None:
                on_step(record)
            if fault_hook is not None:
                fault_hook(it)
    finally:
        model.eval()
    table = pa.Table.from_pylist(records, schema=STEP_SCHEMA)
    first = [r["loss"] for r in records if r["epoch"] == 1]
    last = [r["loss"] for r in records if r["epoch"] == cfg.epochs]
    return TrainResult(steps=table, iterations=len(records), tokens=sum(r["tokens"] for r in records),
                       input_tokens=sum(r["input_tokens"] for r in records),
                       seconds=sum(r["seconds"] for r in records), first_epoch_loss=float(np.mean(first)),
                       final_loss=float(np.mean(last)), trainable_parameters=int(trainable),
                       peak_memory_gb=mx.get_peak_memory() / 1e9)


def adapter_id(cfg: TrainConfig, *, parent_version: str, training_set_sha256: str) -> str:
    """Content id of an adapter: the same data, parent model and config always give the same id."""
    return content_id("ad", training_set_sha256, parent_version, json.dumps(cfg.model_dump(), sort_keys=True))


def adapter_config(cfg: TrainConfig) -> dict:
    """What `mlx_lm.load(base, adapter_path=...)` reads (mlx_lm.tuner.utils.load_adapters)."""
    return {"fine_tune_type": "lora", "num_layers": cfg.num_layers, "lora_parameters": cfg.lora_parameters()}


def find_adapter(adapters_dir: Path, adapter_id_: str) -> Path | None:
    """The verified folder of an already-saved adapter, or None; a tampered one raises IntegrityError."""
    folder = adapters_dir / adapter_id_
    if not folder.exists():
        return None
    manifest = verify_folder(folder)
    if manifest.get("adapter_id") != adapter_id_:
        raise IntegrityError(f"{folder}: manifest names adapter {manifest.get('adapter_id')!r}, not {adapter_id_!r}; "
                             "move the folder aside to retrain")
    return folder


def save_adapter(home_adapters_dir: Path, model, cfg: TrainConfig, result: TrainResult, *, parent_version: str,
                 training_set_id: str, training_set_sha256: str, code_version: str) -> tuple[str, Path]:
    """Write adapters/<adapter_id>/ (weights, adapter_config.json, manifest.json) atomically; reuse an existing one."""
    aid = adapter_id(cfg, parent_version=parent_version, training_set_sha256=training_set_sha256)
    existing = find_adapter(home_adapters_dir, aid)
    if existing is not None:
        return aid, existing  # a resumed run: the same inputs already produced this adapter
    weights = dict(tree_flatten(model.trainable_parameters()))
    if not weights:
        raise ModelError("the model has no trainable LoRA parameters to save; run train_adapter on it first")
    import mlx_lm

    final = home_adapters_dir / aid
    with atomic_dir(final) as tmp:
        mx.save_safetensors(str(tmp / ADAPTER_WEIGHTS), weights, metadata={"format": "mlx"})
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(adapter_config(cfg), indent=2, sort_keys=True))
        pq.write_table(result.steps, tmp / STEPS_FILE)  # the loss curve travels with the adapter
        manifest = {"adapter_id": aid, "kind": "lora", "parent_version": parent_version,
                    "training_set_id": training_set_id, "training_set_sha256": training_set_sha256,
                    "config": cfg.model_dump(), "epochs": cfg.epochs, "learning_rate": cfg.learning_rate,
                    "seed": cfg.seed, "code_version": code_version, "mlx_lm_version": mlx_lm.__version__,
                    "created_at": utcnow().isoformat(), "result": result.summary(), "files": file_hashes(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return aid, final


def plot_loss(steps: pa.Table, out_png: Path) -> Path:
    """A loss-curve PNG (per step and its running mean per epoch length), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    step, loss = steps.column("step").to_numpy(), steps.column("loss").to_numpy()
    epochs = max(steps.column("epoch").to_pylist() or [1])
    window = max(1, len(loss) // epochs)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid") if len(loss) else loss
    fig = Figure(figsize=(7, 3.5), layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(step, loss, lw=0.8, alpha=0.45, label="loss per step")
    if window > 1 and len(smooth):
        ax.plot(step[window - 1:], smooth, lw=2, label=f"mean of last {window} steps")
    ax.set(xlabel="step", ylabel="cross-entropy on answer tokens", title="LoRA training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out_png
