"""Training data for the LoRA loop: examples -> token ids with the answer offset -> padded, seeded batches.

Imports MLX (mlx-lm's ChatDataset, `mx.array`): it is imported by `tasks.training.train_adapter`, after a
model was loaded, so the fast BLAS is in the process first (tasks.model.loading.load_model).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx_lm.tuner.datasets import CacheDataset, ChatDataset

PAD_TO = 32  # as mlx-lm: few distinct batch widths, so the compiled step is traced only a few times

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


def batches(items: list[Item], batch_size: int, epochs: int, seed: int,
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
