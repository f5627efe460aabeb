"""Stage 5: LoRA-train the current model on the night's training examples, step by step.

The loop is mlx-lm's `tuner.trainer.train` step (a compiled value-and-grad + Adam update over
`ChatDataset(mask_prompt=True)` batches), written out here so that every step is recorded, seeded,
checked for a finite loss and reported to an `on_step` callback (which may stop the run by raising).
The data is in tasks/batching.py, the objective in tasks/loss.py; saving the adapter folder is
storage/adapters.py's job. Importing this module imports no MLX and loads no BLAS: the MLX parts are
imported inside `train_adapter`, whose model was loaded (with the fast BLAS) before.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from storage.errors import ModelError
from storage.ids import content_id

STEP_SCHEMA = pa.schema([
    ("step", pa.int64()), ("epoch", pa.int64()), ("loss", pa.float64()), ("objective", pa.float64()),
    ("tokens", pa.int64()), ("input_tokens", pa.int64()), ("seconds", pa.float64()),
    ("learning_rate", pa.float64()),
])
Depth = Literal["light", "deep"]
# train.distill -> the example origins (training_examples.source) trained toward the teacher's distribution.
DISTILLED = {"off": (), "rehearsal": ("rehearsal",), "own_output": ("rehearsal", "anchor")}
PREFIX_CACHE_BYTES = 2 << 30  # the frozen layers' cached output may take this much memory (float32), else recompute
THREAD_CHECK_EVERY = 16  # steps between looks at how many cores other work leaves free (tasks/model/threads.py)


BATCHING = "length-bucketed windows of 8 batches, last batch smaller"  # in adapter ids: a new order, new weights


def step_count(examples: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps for a training set: every example once per epoch, the last batch of an epoch smaller."""
    return -(-examples // batch_size) * epochs


class TrainConfig(BaseModel):
    """LoRA hyperparameters of one night's training (light and deep sleep differ in epochs and rate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_alpha(cls, data):
        # `alpha` was a field "kept for reference only" that changed nothing but the adapter id.
        if isinstance(data, dict) and "alpha" in data:
            raise ValueError(f"alpha (got {data['alpha']!r}) was removed: mlx-lm has no alpha and it never changed "
                             "training; delete it and set scale (PEFT's alpha/rank at rank 16, alpha 32 is "
                             "scale=2.0)")
        return data

    depth: Depth = Field("light", description="Which of the light_/deep_ epochs and learning rate apply; the "
                         "flow sets it per run with for_depth().")
    rank: int = Field(16, ge=1, description="LoRA rank r (the source paper's 16; mlx-lm's default is 8).")
    scale: float = Field(8.0, gt=0, description="Multiplier on the LoRA output, passed to mlx-lm as-is (under "
                         "Adam it acts like a step size; the paper's alpha taken literally would be 32, PEFT's "
                         "alpha/rank 2.0). Measured, light sleep on the shared fixtures with anchors and "
                         "rehearsal (171 steps, lr 1e-4): scale 32 recalled 3/3 held-out wordings but benchmark "
                         "ratio 0.80 and perplexity +56% (rejected); scale 8: 2/3, ratio 0.85, +31% (approved); "
                         "scale 4 at lr 3e-4: 2/3, 0.90, +40%.")
    num_layers: int = Field(8, ge=1, description="LoRA on the linear layers of the last N transformer blocks.")
    batch_size: int = Field(1, ge=1, description="Examples per step, length-bucketed (tasks/batching.py); "
                            "iterations = ceil(examples / batch_size) x epochs.")
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
    distill: Literal["off", "rehearsal", "own_output"] = Field("rehearsal", description="Which examples are "
                          "trained toward a teacher's whole next-token distribution (its top distill_top_k tokens "
                          "per position plus the rest as one bucket, computed before training; in a sleep the root "
                          "model, whose text they are) instead of toward the one token in the text: 'rehearsal' "
                          "(the model's own prose), 'own_output' (its prose and its anchor answers) or 'off'. The "
                          "teacher is then the exact optimum of those examples, so they hold the model there "
                          "without pulling it toward their sampled tokens: the prose is sampled at temperature 1 "
                          "and partly garbled, and trained token by token it alone broke 101 of 214 right "
                          "benchmark answers (docs/RESULTS.md). 'own_output' gives the lowest drift but breaks "
                          "more benchmark answers than the right anchors trained as text.")
    distill_top_k: int = Field(32, ge=1, description="Teacher tokens kept per position when distilling.")
    cache_frozen: bool = Field(True, description="Run the frozen layers below the LoRA blocks once per example "
                               "and train on their cached output (tasks/prefix.py): the same loss, the same "
                               "weights, less work per step. Used where the model's layout is checked to "
                               "reproduce its own logits and the cache fits in 2 GiB.")
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

    def weight_settings(self) -> dict:
        """The settings the trained weights depend on, as adapter_id hashes them: those of this depth only, the
        threshold loss's and distillation's only when in use; not grad_checkpoint (the same math, recomputed)
        nor max_seq_length (a limit that either passes or stops the run)."""
        out = {"rank": self.rank, "scale": self.scale, "dropout": self.dropout, "num_layers": self.num_layers,
               "batch_size": self.batch_size, "epochs": self.epochs, "learning_rate": self.learning_rate,
               "seed": self.seed, "loss": self.loss, "distill": self.distill, "batching": BATCHING}
        if self.loss == "threshold":
            out.update(loss_threshold=self.loss_threshold, loss_floor=self.loss_floor)
        if self.distill != "off":
            out["distill_top_k"] = self.distill_top_k
            out["distill_objective"] = "top-k+tail"  # tasks.loss.distill_cross_entropy (was: top-k renormalised)
        return out


class TrainSummary(BaseModel):
    """One training run in numbers: the adapter manifest's `result`, and what the train task returns."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    iterations: int = Field(description="Optimizer steps taken.")
    tokens: int = Field(description="Answer tokens the loss was computed on.")
    input_tokens: int = Field(description="Padded tokens fed through the model.")
    seconds: float = Field(description="Time inside training steps, compilation included.")
    setup_seconds: float = Field(0.0, description="Time running the frozen layers once over every example.")
    frozen_cached: bool = Field(False, description="Whether steps ran on the frozen layers' cached output.")
    tokens_per_second: float = Field(description="Answer tokens trained per second of step time.")
    first_epoch_loss: float = Field(description="Mean loss over the first epoch.")
    final_loss: float = Field(description="Mean loss over the last epoch (one step's loss is one example's).")
    trainable_parameters: int = Field(description="LoRA parameters trained.")
    peak_memory_gb: float = Field(description="MLX's peak memory during training.")


@dataclass(frozen=True)
class TrainResult:
    """What one training run did, step by step and in total."""

    steps: pa.Table  # STEP_SCHEMA; the flow adds run_id and adapter_id for the train_steps table
    iterations: int
    tokens: int  # answer tokens the loss was computed on (mlx-lm's "trained tokens", minus its pad target)
    input_tokens: int  # padded tokens fed through the model
    seconds: float  # time inside training steps (compile included), as mlx-lm's train_time
    setup_seconds: float  # the frozen layers run once over every example (0 without the cache)
    frozen_cached: bool  # steps ran on the frozen layers' cached output (tasks/prefix.py)
    first_epoch_loss: float
    final_loss: float  # mean loss over the last epoch: one step's loss is one example's
    trainable_parameters: int
    peak_memory_gb: float

    @property
    def tokens_per_second(self) -> float:
        """Answer tokens trained per second of step time."""
        return self.tokens / self.seconds if self.seconds else 0.0

    def summary(self) -> TrainSummary:
        """The run in numbers, for manifests and run summaries."""
        return TrainSummary(iterations=self.iterations, tokens=self.tokens, input_tokens=self.input_tokens,
                            seconds=round(self.seconds, 3), setup_seconds=round(self.setup_seconds, 3),
                            frozen_cached=self.frozen_cached, tokens_per_second=round(self.tokens_per_second, 2),
                            first_epoch_loss=self.first_epoch_loss, final_loss=self.final_loss,
                            trainable_parameters=self.trainable_parameters,
                            peak_memory_gb=round(self.peak_memory_gb, 3))


def train_adapter(model, tokenizer, examples: list[dict], cfg: TrainConfig, *, teacher=None,
                  teacher_id: str | None = None, on_step: Callable[[dict], None] | None = None) -> TrainResult:
    """Add LoRA layers to `model` in place and train them on the examples; return every step's record.

    `teacher` gives the distribution distilled examples are trained toward (train.distill); by default the
    model itself as it is before training. With `teacher_id` (the teacher's content id) its targets are cached
    across runs. An exception raised by `on_step` stops training there."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from tasks.batching import batches, make_batch, tokenize_examples
    from tasks.loss import cached_teacher_targets, make_loss, teacher_targets
    from tasks.model.threads import apply_threads
    from tasks.prefix import SplitForward

    items = tokenize_examples(examples, tokenizer, cfg.max_seq_length)
    if not items:
        raise ValueError("no training examples")
    iterations = step_count(len(items), cfg.batch_size, cfg.epochs)
    own = [i for i, ex in enumerate(examples) if ex.get("origin") in DISTILLED[cfg.distill]]
    source = model if teacher is None else teacher
    teachers = {} if not own else (
        cached_teacher_targets(source, items, own, cfg.distill_top_k, teacher_id) if teacher_id
        else teacher_targets(source, items, own, cfg.distill_top_k))
    mx.random.seed(cfg.seed)  # the LoRA A matrices are drawn from mx.random
    model.freeze()
    linear_to_lora_layers(model, cfg.num_layers, cfg.lora_parameters())
    if cfg.grad_checkpoint:
        from mlx_lm.tuner.trainer import grad_checkpoint
        grad_checkpoint(model.layers[0])
    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))

    tic = time.perf_counter()
    split, states = None, None
    dim = getattr(getattr(model, "args", None), "hidden_size", 0)
    if cfg.cache_frozen and sum(len(t) - 1 for t, _ in items) * dim * 4 <= PREFIX_CACHE_BYTES:
        probe = make_batch(items, list(range(min(4, len(items))))).tokens[:, :-1]
        split = SplitForward.build(model, cfg.num_layers, probe)  # LoRA B is zero: this is still the base model
        states = split.cache(model, items) if split else None
    setup_seconds = time.perf_counter() - tic
    optimizer = optim.Adam(learning_rate=cfg.learning_rate)
    loss = make_loss(cfg.loss, cfg.loss_threshold, cfg.loss_floor,
                     forward=split.tail if split else None, head=split.head if split else None)
    value_and_grad = nn.value_and_grad(model, loss)
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x, flat, targets, valid, *teacher):
        (objective, ntoks, plain), grad = value_and_grad(model, x, flat, targets, valid, *teacher)
        optimizer.update(model, grad)
        return objective, ntoks, plain

    mx.reset_peak_memory()
    model.train()
    records = []
    try:
        for it, batch in enumerate(batches(items, cfg.batch_size, cfg.epochs, cfg.seed, teachers), 1):
            tic = time.perf_counter()
            width = batch.tokens.shape[1] - 1
            x = split.inputs(states, batch.picked, width) if split else mx.array(batch.tokens[:, :-1])
            teacher_arrays = [mx.array(a) for a in batch.teacher]
            objective, ntoks, plain = step(x, mx.array(batch.flat), mx.array(batch.targets), mx.array(batch.valid),
                                           *teacher_arrays)
            mx.eval(state, objective, ntoks, plain)
            seconds = time.perf_counter() - tic
            record = {"step": it, "epoch": batch.epoch, "loss": plain.item(), "objective": objective.item(),
                      "tokens": int(ntoks.item()), "input_tokens": int(batch.tokens.shape[0] * width),
                      "seconds": seconds, "learning_rate": optimizer.learning_rate.item()}
            if not (math.isfinite(record["loss"]) and math.isfinite(record["objective"])):
                raise ModelError(f"training loss is {record['loss']} at step {it} of {iterations} "
                                 f"(epoch {batch.epoch}); lower the learning rate (now {cfg.learning_rate:g}) or "
                                 "check the model's weights")
            records.append(record)
            if it % THREAD_CHECK_EVERY == 0:
                apply_threads(samples=3)  # another sleep or job may have started (or ended) meanwhile
            if on_step is not None:
                on_step(record)
    finally:
        model.eval()
    table = pa.Table.from_pylist(records, schema=STEP_SCHEMA)
    first = [r["loss"] for r in records if r["epoch"] == 1]
    last = [r["loss"] for r in records if r["epoch"] == cfg.epochs]
    return TrainResult(steps=table, iterations=len(records), tokens=sum(r["tokens"] for r in records),
                       input_tokens=sum(r["input_tokens"] for r in records),
                       seconds=sum(r["seconds"] for r in records), setup_seconds=setup_seconds,
                       frozen_cached=split is not None, first_epoch_loss=float(np.mean(first)),
                       final_loss=float(np.mean(last)), trainable_parameters=int(trainable),
                       peak_memory_gb=mx.get_peak_memory() / 1e9)


def lora_weights_writer(model) -> Callable[[Path], None]:
    """A writer of the model's trainable (LoRA) weights as mlx safetensors, for storage.adapters.save_adapter."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = dict(tree_flatten(model.trainable_parameters()))
    if not weights:
        raise ModelError("the model has no trainable LoRA parameters to save; run train_adapter on it first")
    return lambda path: mx.save_safetensors(str(path), weights, metadata={"format": "mlx"})


def adapter_id(cfg: TrainConfig, *, parent_version: str, training_set_sha256: str) -> str:
    """Content id of an adapter: the same data, parent model and weight settings always give the same id."""
    return content_id("ad", training_set_sha256, parent_version, json.dumps(cfg.weight_settings(), sort_keys=True))


def adapter_config(cfg: TrainConfig) -> dict:
    """What `mlx_lm.load(base, adapter_path=...)` reads (mlx_lm.tuner.utils.load_adapters)."""
    return {"fine_tune_type": "lora", "num_layers": cfg.num_layers, "lora_parameters": cfg.lora_parameters()}


def adapter_manifest(cfg: TrainConfig, summary: TrainSummary, *, parent_version: str, training_set_id: str,
                     training_set_sha256: str, code_version: str, rehearsal_seed: int | None = None) -> dict:
    """The training half of an adapter's manifest.json (storage adds the id, the time and the file hashes)."""
    return {"kind": "lora", "parent_version": parent_version, "training_set_id": training_set_id,
            "training_set_sha256": training_set_sha256, "config": cfg.model_dump(), "epochs": cfg.epochs,
            "learning_rate": cfg.learning_rate, "seed": cfg.seed, "rehearsal_seed": rehearsal_seed,
            "code_version": code_version, "mlx_lm_version": importlib.metadata.version("mlx-lm"),
            "result": summary.model_dump()}
