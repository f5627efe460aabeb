"""The frozen layers' output, computed once per training run instead of at every step.

LoRA trains only the last `num_layers` blocks, and dropout (if any) acts inside those, so everything below them
(the embedding and the first blocks) maps an example to the same hidden states at every step of every epoch.
SplitForward runs that frozen prefix once per example before training and the compiled step runs only the
trained tail and the output head. On the default model (30 blocks, LoRA on 8) that removes 22/30 of the forward
pass from every step after the first sight of an example.

It needs the mlx-lm layout the llama family shares (`model.model.embed_tokens / layers / norm`, each block
called as `block(h, mask, cache)`, a tied embedding or `lm_head`); `SplitForward.build` checks on real inputs
that prefix + tail + head reproduces the model's own logits and returns None otherwise, and training then
runs the whole model each step. Imports MLX: imported by tasks.training after a model was loaded.
"""

from __future__ import annotations

import hashlib

import mlx.core as mx
import numpy as np

MATCH_TOLERANCE = 1e-3  # max |logit difference| allowed between the split and the whole model (float32)


class SplitForward:
    """prefix (frozen, once per example) -> tail (the LoRA blocks, every step) -> head (answer positions)."""

    def __init__(self, model, num_layers: int):
        inner = model.model
        self.frozen = len(inner.layers) - num_layers
        self.tied = not hasattr(model, "lm_head")

    def prefix(self, model, tokens: mx.array) -> mx.array:
        """Hidden states entering the first trained block, (rows, width, dim)."""
        inner = model.model
        h = inner.embed_tokens(tokens)
        for block in inner.layers[:self.frozen]:
            h = block(h, "causal", cache=None)
        return h

    def tail(self, model, h: mx.array) -> mx.array:
        """Final normalised hidden states from the prefix's output (the trained blocks run here)."""
        inner = model.model
        for block in inner.layers[self.frozen:]:
            h = block(h, "causal", cache=None)
        return inner.norm(h)

    def head(self, model, h: mx.array) -> mx.array:
        """Logits for hidden states (any leading shape)."""
        return model.model.embed_tokens.as_linear(h) if self.tied else model.lm_head(h)

    @classmethod
    def build(cls, model, num_layers: int, probe: np.ndarray) -> "SplitForward | None":
        """A split for this model if its layout is the expected one and reproduces model(probe) on the given
        (rows, width) token ids; None where it does not (training then runs the whole model)."""
        inner = getattr(model, "model", None)
        if not all(hasattr(inner, a) for a in ("embed_tokens", "layers", "norm")) or not hasattr(
                inner.embed_tokens, "as_linear") or not 0 < num_layers < len(inner.layers):
            return None
        split = cls(model, num_layers)
        tokens = mx.array(probe)
        try:
            mine = split.head(model, split.tail(model, split.prefix(model, tokens)))
            theirs = model(tokens)
            diff = mx.max(mx.abs(mine.astype(mx.float32) - theirs.astype(mx.float32))).item()
        except (TypeError, ValueError, AttributeError):  # another block signature: not this layout
            return None
        return split if diff <= MATCH_TOLERANCE else None

    def cache(self, model, items: list[tuple[list[int], int]], batch_tokens: int = 4096) -> list[mx.array]:
        """The prefix's output for every item's inputs (tokens[:-1]), (length - 1, dim) each, evaluated; items of
        one length go through together, up to batch_tokens tokens a call."""
        out: list[mx.array | None] = [None] * len(items)
        by_length: dict[int, list[int]] = {}
        for i, (tokens, _) in enumerate(items):
            by_length.setdefault(len(tokens) - 1, []).append(i)
        for length, members in by_length.items():
            per_call = max(1, batch_tokens // max(length, 1))
            for s in range(0, len(members), per_call):
                chunk = members[s:s + per_call]
                h = self.prefix(model, mx.array(np.array([items[i][0][:-1] for i in chunk], np.int32)))
                mx.eval(h)
                for r, i in enumerate(chunk):
                    out[i] = h[r]
        return out

    def inputs(self, states: list[mx.array], picked: list[int], width: int) -> mx.array:
        """The cached states of a batch's rows, zero-padded on the right to (rows, width, dim)."""
        dim = states[picked[0]].shape[-1]
        rows = []
        for i in picked:
            s = states[i]
            rows.append(mx.pad(s, [(0, width - s.shape[0]), (0, 0)]) if s.shape[0] < width else s)
        return mx.stack(rows) if rows else mx.zeros((0, width, dim))


def weights_key(model, frozen: int) -> str:
    """sha256 of what the frozen prefix computes with: the embedding's and the first `frozen` blocks' parameters
    (names, shapes, dtypes and bytes). Fusing a LoRA adapter on later blocks leaves it unchanged, so every
    version trained that way from one root shares it."""
    from mlx.utils import tree_flatten

    inner = model.model
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__name__}:{frozen}".encode())
    modules = [("embed_tokens", inner.embed_tokens)] + [(f"layers.{i}", b) for i, b in enumerate(inner.layers[:frozen])]
    for prefix, module in modules:
        for name, value in tree_flatten(module.parameters()):
            # float32 holds every float dtype MLX loads exactly (numpy has no bfloat16)
            array = np.array(value.astype(mx.float32) if mx.issubdtype(value.dtype, mx.floating) else value)
            digest.update(f"{prefix}.{name}:{value.shape}:{value.dtype}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def _has_lora(module) -> bool:
    from mlx.utils import tree_flatten

    return any(name.endswith("lora_a") for name, _ in tree_flatten(module.parameters()))


class FrozenStates:
    """The frozen prefix's output on fixed text windows, kept on disk by the prefix weights' content.

    The gate measures perplexity of the parent and of the candidate (parent + a LoRA adapter on the last
    `num_layers` blocks) on the same general text. Below those blocks both compute the same hidden states, and
    so does every later version fused from adapters of that depth, so the prefix runs once per root model and
    the candidate's perplexity runs only the adapted blocks and the head. Used by
    tasks.model.answering.perplexity; `build` returns None where the split does not apply (then the whole model
    runs)."""

    def __init__(self, split: SplitForward, key: str, dtype):
        self.split, self.key, self.dtype = split, key, dtype
        self.path = None
        self.states: dict[str, np.ndarray] = {}
        self.added = False

    @classmethod
    def build(cls, model, num_layers: int, probe: list[int]) -> "FrozenStates | None":
        """States for this model's prefix below its last `num_layers` blocks, if those blocks hold every LoRA
        layer and the split reproduces the model's logits on `probe` (a few token ids); else None."""
        inner = getattr(model, "model", None)
        layers = getattr(inner, "layers", None)
        if layers is None or not 0 < num_layers < len(layers) or any(
                _has_lora(b) for b in layers[:len(layers) - num_layers]):
            return None
        split = SplitForward.build(model, num_layers, np.array([probe], np.int32))
        if split is None:
            return None
        dtype = split.prefix(model, mx.array([probe[:2]])).dtype  # what the kept float32 states are cast back to
        return cls(split, weights_key(model, split.frozen), dtype)

    def open(self, ids: list[int], window: int, stride: int) -> None:
        """Bind to one text's windows: read what an earlier run kept for them."""
        from storage.cache import cached_path
        from storage.ids import content_id

        text_key = hashlib.sha256(np.asarray(ids, np.int64).tobytes()).hexdigest()
        self.path = cached_path("prefix", content_id("s", self.key, text_key, window, stride), ".npz")
        self.states, self.added = {}, False
        if self.path.exists():
            with np.load(self.path) as kept:
                self.states = {name: kept[name] for name in kept.files}

    def logits(self, model, spans: list[tuple[int, int]], inputs: mx.array) -> mx.array:
        """The model's logits on `inputs` (one row per (begin, end) span), the prefix read where kept."""
        names = [f"{b}-{e}" for b, e in spans]
        if all(n in self.states for n in names):
            h = mx.array(np.stack([self.states[n] for n in names])).astype(self.dtype)
        else:
            h = self.split.prefix(model, inputs)
            mx.eval(h)
            for r, n in enumerate(names):
                self.states[n] = np.array(h[r].astype(mx.float32))
            self.added = True
        return self.split.head(model, self.split.tail(model, h))

    def save(self) -> None:
        """Keep the states computed since `open` (atomically)."""
        from storage.atomic import atomic_path

        if self.added and self.path is not None:
            with atomic_path(self.path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **self.states)
            self.added = False
