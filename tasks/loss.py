"""The training objective: cross-entropy on the answer tokens, MemFT threshold weights, and distillation toward
a teacher's top-k next-token distribution (computed before LoRA is added).

Differs from mlx-lm's `default_loss` in one place on purpose: mlx-lm also trains each row to predict one
padding token after its last token (`steps <= length`; mlx-lm PR #1697); ours masks exactly the answer plus
its end-of-turn tokens, and computes the output head at those positions only. Imports MLX: imported by `tasks.training.train_adapter` after a model was loaded.
"""

from __future__ import annotations

from typing import Callable, Literal

import mlx.core as mx
import mlx.nn as nn
import numpy as np


def teacher_targets(model, items: list[tuple[list[int], int]], indices, k: int,
                    batch_size: int = 8) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{item index: (token ids, probabilities)}, each (length-1, k): the model's k likeliest next tokens at every
    position of those items and their probabilities under its whole distribution (not renormalised over the k:
    1 - their sum is the tail's mass, which the objective keeps too). Run before LoRA is added.

    Items of similar length go through the model together, right-padded: attention is causal, so the padding
    after an item never reaches its own positions, and each row is cut back to its own length."""
    out = {}
    order = sorted(indices, key=lambda i: len(items[i][0]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        lengths = [len(items[i][0]) - 1 for i in chunk]
        batch = np.zeros((len(chunk), max(lengths)), dtype=np.int32)
        for row, i in enumerate(chunk):
            batch[row, :lengths[row]] = items[i][0][:-1]
        logits = model(mx.array(batch)).astype(mx.float32)
        ids = mx.argpartition(-logits, kth=k - 1, axis=-1)[..., :k]
        probs = mx.take_along_axis(mx.softmax(logits, axis=-1), ids, axis=-1)
        mx.eval(ids, probs)
        ids_np, probs_np = np.array(ids, dtype=np.int32), np.array(probs, dtype=np.float32)
        for row, i in enumerate(chunk):
            out[i] = (ids_np[row, :lengths[row]], probs_np[row, :lengths[row]])
    return out


def cached_teacher_targets(model, items: list[tuple[list[int], int]], indices, k: int, teacher_id: str,
                           batch_size: int = 8) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """`teacher_targets`, each item's kept in the user cache under (teacher_id, k, its tokens): the teacher is the
    root model and rehearsal prose is sampled once per model, so every later night reads them instead of a
    forward pass over every rehearsal token (about 60 s for 90 samples on 2 busy cores)."""
    from storage.atomic import atomic_path
    from storage.home import cache_root
    from storage.ids import content_id

    folder = cache_root() / "teacher"
    paths = {i: folder / f"{content_id('tt', teacher_id, k, ','.join(map(str, items[i][0])))}.npz" for i in indices}
    out = {}
    for i, path in paths.items():
        if path.exists():
            with np.load(path) as f:
                out[i] = (f["ids"], f["probs"])
    missing = [i for i in indices if i not in out]
    made = teacher_targets(model, items, missing, k, batch_size) if missing else {}
    for i, (ids, probs) in made.items():
        with atomic_path(paths[i]) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, ids=ids, probs=probs)
    return {**out, **made}


def distill_cross_entropy(logits: mx.array, t_ids: mx.array, t_probs: mx.array) -> mx.array:
    """Cross-entropy of the student's distribution against the teacher's, both seen as its top-k tokens plus one
    bucket for every other token: -sum_i p_i log q_i - (1 - sum_i p_i) log(1 - sum_i q_i), per position.

    Its minimum is the teacher itself (q_i = p_i and the same mass left outside the k), so an example trained
    this way is exactly at rest while the model still is the teacher. Renormalising the teacher's k
    probabilities to sum to 1 instead (as this did before) moves that minimum: it trains the whole tail's mass
    (a fifth or more on a small model's prose) onto the k tokens, a change of its own."""
    logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    top = mx.take_along_axis(logp, t_ids, axis=-1)
    tail_p = mx.maximum(1.0 - t_probs.sum(axis=-1), 0.0)
    tail_q = mx.maximum(1.0 - mx.exp(top).sum(axis=-1), 1e-9)
    return -(t_probs * top).sum(axis=-1) - tail_p * mx.log(tail_q)


def threshold_weights(target_logprobs: mx.array, mask: mx.array, threshold: float, floor: float) -> mx.array:
    """MemFT weights: 1 where p(target) < threshold (greedy recall fails there), else floor; 0 off the
    mask; normalised to sum to 1 and held constant in backward.

    With every token unlearned this is the plain mean; once most of an answer is memorised the
    remaining hard tokens (e.g. the name itself) carry most of the gradient instead of 1/n of it.
    """
    maskf = mask.astype(mx.float32)
    raw = mx.where(mx.exp(target_logprobs) < threshold, 1.0, floor) * maskf
    return mx.stop_gradient(raw / mx.maximum(raw.sum(), 1e-12))


def make_loss(kind: Literal["plain", "threshold"], threshold: float = 0.5, floor: float = 0.1,
              forward: Callable | None = None, head: Callable | None = None) -> Callable:
    """loss(model, x, flat, targets, valid, *teacher) -> (objective, answer tokens, plain mean cross-entropy on the
    actual tokens); `kind`, `threshold` and `floor` are train.loss, loss_threshold and loss_floor.

    `forward(model, x)` gives the final hidden states (rows, width, dim) and `head(model, h)` then runs only
    at the `flat` positions (tasks.batching.Batch): tasks.prefix.SplitForward's, whose x is the frozen layers'
    cached output. Without them x are token ids through the whole model and the logits are picked. With teacher = (ids, probs,
    distilled) the objective's term at a distilled target is the cross-entropy against the teacher's top-k
    distribution instead of against the one token in the text."""
    forward = forward or (lambda model, x: model(x))
    head = head or (lambda model, h: h)

    def loss(model, x, flat, targets, valid, *teacher):
        hidden = forward(model, x)
        picked = hidden.reshape(-1, hidden.shape[-1])[flat]
        logits = head(model, picked).astype(mx.float32)
        ce = nn.losses.cross_entropy(logits, targets)
        ntoks = valid.sum()
        plain = (ce * valid).sum() / ntoks
        per_token = ce
        if teacher:
            t_ids, t_probs, distilled = teacher
            soft = distill_cross_entropy(logits, t_ids, t_probs)
            per_token = mx.where(distilled, soft, ce)
        if kind == "plain":
            # Without teachers the objective is `plain` itself: computing the same sum a second time makes
            # mx.compile merge the two into one output, which it then cannot map back (IndexError).
            return ((per_token * valid).sum() / ntoks if teacher else plain), ntoks, plain
        weights = threshold_weights(-ce, valid, threshold, floor)
        return (weights * per_token).sum(), ntoks, plain

    return loss
