"""Rehearsal prose: the root model's own writing, sampled once, trained on every token against forgetting.

Training on a few hundred chat examples moves the model's next-token distribution on ordinary text
(perplexity drift). Prose the model itself samples at temperature 1 from an empty context is a draw
from that distribution; mixing it into training with the loss on every token pulls the adapter back
toward it ("pseudo-rehearsal"). A small model's samples at temperature 1 are partly garbled, and trained
toward their sampled tokens they move the model themselves (docs/RESULTS.md), so by default
(`train.distill = "rehearsal"`) every position is trained toward the root model's own next-token
distribution there instead. No outside text is used, so the gate's held-out general text stays unseen.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z]+")


def readable(text: str, min_words: int = 16) -> bool:
    """True for prose worth rehearsing: enough words, mostly letters (not a run of symbols or code)."""
    words = _WORD.findall(text)
    letters = sum(len(w) for w in words)
    return len(words) >= min_words and letters >= 0.6 * len(text.strip())


def sample_prose(model, tokenizer, n: int, max_tokens: int, seed: int = 0, batch_size: int = 16) -> list[str]:
    """Up to n readable samples of the model's own prose from an empty context, reproducible from the seed."""
    import mlx.core as mx
    from mlx_lm import batch_generate
    from mlx_lm.sample_utils import make_sampler

    if n <= 0:
        return []
    mx.random.seed(seed)
    start = [tokenizer.eos_token_id]  # SmolLM-style models start documents after an end-of-text token
    response = batch_generate(model, tokenizer, [start] * n, max_tokens=max_tokens, sampler=make_sampler(temp=1.0),
                              prefill_batch_size=batch_size, completion_batch_size=batch_size)
    return [t.strip() for t in response.texts if readable(t)]
