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
