"""Training data for the LoRA loop: examples -> token ids with the answer offset -> padded, seeded batches.

Imports MLX (mlx-lm's ChatDataset, `mx.array`): it is imported by `tasks.training.train_adapter`, after a
model was loaded, so the fast BLAS is in the process first (tasks.model.loading.load_model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlx_lm.tuner.datasets import CacheDataset, ChatDataset

PAD_TO = 16  # input widths are multiples of this: few distinct shapes, so the compiled step is traced a few times
PAD_TARGETS = 32  # trained-target counts are padded to multiples of this, for the same reason
BUCKET_BATCHES = 8  # batches per length-sorted window of the shuffled order (see _epoch_batches)

Item = tuple[list[int], int]  # (token ids, offset of the first trained target)


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


def tokenize_examples(examples: list[dict], tokenizer, max_seq_length: int) -> list[Item]:
    """(tokens, answer offset) per example: chat examples via mlx-lm's ChatDataset with the prompt masked;
    plain-text examples ({"text": ...}, rehearsal of the model's own prose) trained on every token."""
    chats = [(i, ex) for i, ex in enumerate(examples) if not ex.get("text")]
    items: list[Item | None] = [None] * len(examples)
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


@dataclass(frozen=True)
class Batch:
    """One training step's data. `tokens` (rows, width) zero-padded on the right; the loss is computed only at
    the `flat` positions of the (rows, width - 1) input grid (the answer targets, padded to a multiple of
    PAD_TARGETS with `valid` 0), so the output head never runs on prompt or padding positions."""

    epoch: int
    picked: list[int]  # item indices, one per row
    tokens: np.ndarray  # (rows, width) int32
    flat: np.ndarray  # (k,) int32: row * (width - 1) + position of each trained target
    targets: np.ndarray  # (k,) int32: the token to predict there
    valid: np.ndarray  # (k,) float32: 1 for a real target, 0 for padding
    teacher: tuple = ()  # () or (ids (k, top_k), probabilities (k, top_k), distilled (k,) bool)


def target_positions(tokens: list[int], offset: int) -> range:
    """Input positions p whose next token tokens[p + 1] is trained: the answer and its end-of-turn tokens
    (from the answer offset), every token of a plain text (offset 0)."""
    return range(max(offset - 1, 0), len(tokens) - 1)


def _epoch_batches(items: list[Item], order: np.ndarray, batch_size: int, rng) -> list[list[int]]:
    """Batches of one epoch: the seeded order cut into windows of BUCKET_BATCHES batches, each window sorted by
    length (so a batch pads to about its own rows' width), then the batches shuffled. Batch size 1: the order."""
    if batch_size == 1:
        return [[int(j)] for j in order]
    out = []
    window = batch_size * BUCKET_BATCHES
    for w in range(0, len(order), window):
        chunk = sorted((int(j) for j in order[w:w + window]), key=lambda j: len(items[j][0]))
        out += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def make_batch(items: list[Item], picked: list[int], epoch: int = 1,
               teachers: dict[int, tuple[np.ndarray, np.ndarray]] | None = None) -> Batch:
    """The padded tokens, trained target positions and (distilled rows') teacher targets of the picked items."""
    rows = [items[j] for j in picked]
    longest = max(len(t) for t, _ in rows)
    width = 1 + PAD_TO * ((longest - 1 + PAD_TO - 1) // PAD_TO)  # inputs = width - 1, a multiple of PAD_TO
    arr = np.zeros((len(rows), width), np.int32)
    flat, targets = [], []
    for r, (tokens, offset) in enumerate(rows):
        arr[r, :len(tokens)] = tokens
        positions = target_positions(tokens, offset)
        flat += [r * (width - 1) + p for p in positions]
        targets += [tokens[p + 1] for p in positions]
    n = len(flat)
    k = PAD_TARGETS * -(-n // PAD_TARGETS)
    valid = np.zeros(k, np.float32)
    valid[:n] = 1
    flat_arr = np.zeros(k, np.int32)
    flat_arr[:n] = flat
    target_arr = np.zeros(k, np.int32)
    target_arr[:n] = targets
    teacher = ()
    if teachers:
        top_k = next(iter(teachers.values()))[0].shape[1]
        t_ids, t_probs = np.zeros((k, top_k), np.int32), np.zeros((k, top_k), np.float32)
        distilled = np.zeros(k, bool)
        i = 0
        for j, (tokens, offset) in zip(picked, rows):
            positions = target_positions(tokens, offset)
            if j in teachers:
                ids, probs = teachers[j]
                t_ids[i:i + len(positions)] = ids[positions.start:positions.stop]
                t_probs[i:i + len(positions)] = probs[positions.start:positions.stop]
                distilled[i:i + len(positions)] = True
            i += len(positions)
        teacher = (t_ids, t_probs, distilled)
    return Batch(epoch, list(picked), arr, flat_arr, target_arr, valid, teacher)


def batches(items: list[Item], batch_size: int, epochs: int, seed: int,
            teachers: dict[int, tuple[np.ndarray, np.ndarray]] | None = None):
    """Batch per step: each epoch a fresh seeded permutation of every item, length-bucketed into batches
    (see _epoch_batches); teachers maps a distilled item to its (ids, probabilities) per position."""
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(items))
        for picked in _epoch_batches(items, order, batch_size, rng):
            yield make_batch(items, picked, epoch, teachers)
