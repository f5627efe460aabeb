"""Asking a loaded model things: batched greedy answers, seeded samples, perplexity on plain text.

Decoding a 135M model on CPU is bound by the lm-head matrix-vector product, not by the GEMM
(NOTES.md), so throughput comes from decoding many prompts at once: everything here goes through
mlx-lm's `batch_generate` (continuous batching, right-padded prefill). Measured on the float32
default model: batched greedy answers equal the single-prompt `generate` answers on all 62
benchmark questions (tests/test_gating.py checks 3 on every run); float32 rounding in a padded
batch could in principle still flip a near-tie between two tokens.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

from tasks.model.blas import ensure_fast_blas

ensure_fast_blas()  # before MLX is imported in this process: the bundled reference BLAS is ~30x slower

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
from mlx_lm import generate  # noqa: E402
from mlx_lm.sample_utils import make_sampler  # noqa: E402

try:
    from mlx_lm import batch_generate
except ImportError:  # older mlx-lm releases: fall back to one prompt at a time
    batch_generate = None

if TYPE_CHECKING:
    from tasks.prefix import FrozenStates

Chat = list[dict[str, str]]


def chat_tokens(tokenizer, messages: Chat) -> list[int]:
    """The prompt token ids for a chat, ending with the assistant's generation prompt."""
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))


def _question_chat(question: str, system: str | None) -> Chat:
    # Without a system message the template inserts the model's own default one ("You are a
    # helpful AI assistant named SmolLM…"): the same prompt the person's chat sessions get.
    chat = [{"role": "system", "content": system}] if system is not None else []
    return chat + [{"role": "user", "content": question}]


def stable_text(text: str) -> str:
    """The part of a growing reply that later tokens cannot change at word level: up to and including its last
    non-word character (the word being written may still grow: "Par" -> "Paris" -> "Parisian")."""
    for i in range(len(text) - 1, -1, -1):
        if not (text[i].isalnum() or text[i] == "_"):
            return text[:i + 1]
    return ""


def generate_chats(model, tokenizer, chats: Sequence[Chat], *, max_tokens: int = 48, batch_size: int = 8,
                   sampler=None, reply_prefix: str = "",
                   stop_when: Callable[[int, str], bool] | None = None) -> list[str]:
    """The model's reply to each chat, in order, stripped; greedy unless a sampler is given.

    `reply_prefix` is put in the assistant's mouth before it speaks (e.g. "Q:" to hold a small model to
    a format); the returned texts start with it. `stop_when(i, text)` is asked after every token with chat
    i's reply so far (cut by stable_text); True ends that reply there and frees its place in the batch.
    """
    if max_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_tokens ({max_tokens}) and batch_size ({batch_size}) must be at least 1")
    prefix = tokenizer.encode(reply_prefix, add_special_tokens=False) if reply_prefix else []
    prompts = [chat_tokens(tokenizer, chat) + prefix for chat in chats]
    if not prompts:
        return []
    if stop_when is not None:
        return [(reply_prefix + text).strip() for text in
                _generate_until(model, tokenizer, prompts, max_tokens, batch_size, sampler, stop_when)]
    if batch_generate is None:
        return [(reply_prefix + generate(model, tokenizer, p, max_tokens=max_tokens, sampler=sampler)).strip()
                for p in prompts]
    # prefill = completion batch size: `batch_size` sequences decode together, and a finished one
    # is replaced by the next prompt at once (continuous batching), so short answers cost nothing.
    kwargs: dict[str, Any] = {"prefill_batch_size": batch_size, "completion_batch_size": batch_size}
    if sampler is not None:
        kwargs["sampler"] = sampler
    response = batch_generate(model, tokenizer, prompts, max_tokens=max_tokens, **kwargs)
    return [(reply_prefix + text).strip() for text in response.texts]


SHARED_MIN = 8  # tokens: a shorter common beginning is not worth a cache of its own


def shared_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """How many first tokens every prompt shares, leaving each at least one token of its own."""
    if len(prompts) < 2:
        return 0
    first, n = prompts[0], min(len(p) for p in prompts) - 1
    for i in range(n):
        if any(p[i] != first[i] for p in prompts):
            return i
    return max(n, 0)


def _prefix_caches(model, tokens: list[int], copies: int) -> list[list[Any]] | None:
    """`copies` KV caches that all hold `tokens` already processed (one forward pass for all), or None where the
    model's cache is not the plain KVCache that batches with a history."""
    from mlx_lm.models.cache import KVCache, make_prompt_cache

    cache = make_prompt_cache(model)
    if not all(type(c) is KVCache for c in cache):
        return None
    model(mx.array([tokens]), cache=cache)
    mx.eval([c.state for c in cache])
    # Shallow copies share the arrays: the generator merges caches into new batch arrays and never writes to
    # the ones it is given, so one prefix's keys and values serve every prompt.
    return [[copy.copy(c) for c in cache] for _ in range(copies)]


def _generate_until(model, tokenizer, prompts: list[list[int]], max_tokens: int, batch_size: int, sampler,
                    stop_when: Callable[[int, str], bool]) -> list[str]:
    """batch_generate's continuous batching (mlx-lm's BatchGenerator), with each reply also ended by stop_when.

    The beginning all prompts share (the chat template's system block, ~60% of a short question's tokens) is
    run through the model once and each prompt's own tokens continue from its keys and values."""
    from mlx_lm.generate import BatchGenerator

    gen = BatchGenerator(model, stop_tokens=[[t] for t in tokenizer.eos_token_ids], sampler=sampler,
                         max_tokens=max_tokens, prefill_batch_size=batch_size, completion_batch_size=batch_size)
    try:
        n = shared_prefix(prompts)
        caches = _prefix_caches(model, prompts[0][:n], len(prompts)) if n >= SHARED_MIN else None
        if caches is None:
            uids = gen.insert(prompts, [max_tokens] * len(prompts))
        else:
            uids = gen.insert([p[n:] for p in prompts], [max_tokens] * len(prompts), caches=caches,
                              all_tokens=[list(p[:n]) for p in prompts])
        index = {uid: i for i, uid in enumerate(uids)}
        tokens: dict[int, list[int]] = {uid: [] for uid in uids}
        while responses := gen.next_generated():
            ended = []
            for r in responses:
                if r.finish_reason != "stop":
                    tokens[r.uid].append(r.token)
                if r.finish_reason is None and stop_when(index[r.uid], stable_text(tokenizer.decode(tokens[r.uid]))):
                    ended.append(r.uid)
            if ended:
                gen.remove(ended)
    finally:
        gen.close()
    return [tokenizer.decode(tokens[uid]) for uid in uids]


def answer_questions(model, tokenizer, questions: Sequence[str], *, max_tokens: int = 48, batch_size: int = 8,
                     system: str | None = None, stop_when: Callable[[int, str], bool] | None = None) -> list[str]:
    """Greedy answers to single-turn questions, in order (the same text `generate` gives one at a time);
    stop_when as generate_chats."""
    chats = [_question_chat(q, system) for q in questions]
    return generate_chats(model, tokenizer, chats, max_tokens=max_tokens, batch_size=batch_size, stop_when=stop_when)


def sample_answers(model, tokenizer, prompts: Sequence[str | Chat], temperature: float = 0.9, seed: int = 0,
                   max_tokens: int = 96, *, batch_size: int = 8, system: str | None = None,
                   reply_prefix: str = "", min_p: float = 0.0) -> list[str]:
    """Sampled answers ("dreams") at `temperature` to questions or whole chats; the same seed, prompts and
    batch size give the same texts."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 for sampling (got {temperature}); use answer_questions for greedy")
    # mlx-lm samplers draw from MLX's global generator: seeding it here makes a run reproducible.
    mx.random.seed(seed)
    chats = [p if isinstance(p, list) else _question_chat(p, system) for p in prompts]
    return generate_chats(model, tokenizer, chats, max_tokens=max_tokens, batch_size=batch_size,
                          sampler=make_sampler(temp=temperature, min_p=min_p), reply_prefix=reply_prefix)


def _windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) per window; every position ≥ 1 is scored exactly once."""
    out, scored_to = [], 1  # position 0 has no context to be predicted from
    for begin in range(0, max(n_tokens - 1, 1), stride):
        end = min(begin + window, n_tokens)
        first = max(scored_to, begin + 1)
        if first < end:
            out.append((begin, end, first))
            scored_to = end
        if end == n_tokens:
            break
    return out


def _window_nll(logits: mx.array, batch: mx.array, first: int) -> mx.array:
    """Summed next-token NLL over positions ≥ `first` of each row of `batch`, from the logits on its inputs
    (batch[:, :-1]), in float32."""
    logits = logits.astype(mx.float32)
    targets = batch[:, 1:]
    losses = nn.losses.cross_entropy(logits[:, first - 1:], targets[:, first - 1:], reduction="none")
    return losses.sum(axis=1)


def perplexity(model, tokenizer, text: str, *, window: int = 512, stride: int = 512, batch_size: int = 2,
               frozen: FrozenStates | None = None) -> dict:
    """Perplexity of `text` in windows: {tokens scored, text_tokens, windows, nll (mean, nats), ppl}.

    With `frozen` (tasks.prefix.FrozenStates for this model) the windows' hidden states below the adapted
    blocks are read from where an earlier run kept them (or computed and kept), and only the rest runs."""
    if window < 2 or not 1 <= stride <= window:
        raise ValueError(f"need window ≥ 2 and 1 ≤ stride ≤ window (got window={window}, stride={stride})")
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    if len(ids) < 2:
        raise ValueError(f"text has {len(ids)} token(s); perplexity needs at least 2")
    spans = _windows(len(ids), window, stride)
    if frozen is not None:
        frozen.open(ids, window, stride)
    total, scored = 0.0, 0
    # Windows of the same shape and scored range run as one batch; in practice that is every window
    # but the first (when stride < window) and the last (shorter).
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for begin, end, first in spans:
        groups.setdefault((end - begin, first - begin), []).append((begin, end))
    for (length, offset), members in groups.items():
        for i in range(0, len(members), batch_size):
            chunk = members[i:i + batch_size]
            batch = mx.array([ids[b:e] for b, e in chunk])
            logits = model(batch[:, :-1]) if frozen is None else frozen.logits(model, chunk, batch[:, :-1])
            sums = _window_nll(logits, batch, offset)
            mx.eval(sums)
            total += float(sums.sum().item())
            scored += (length - offset) * len(chunk)
    if frozen is not None:
        frozen.save()
    nll = total / scored
    ppl = math.exp(nll) if nll < 700 else math.inf  # exp overflows a float near 709; NaN stays NaN below
    if math.isnan(nll):
        ppl = math.nan
    return {"tokens": scored, "text_tokens": len(ids), "windows": len(spans), "nll": nll, "ppl": ppl}
