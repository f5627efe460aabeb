"""Dreams (deep sleep): the model combines facts across topics at high temperature; the firewall keeps the grounded ones."""

from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from storage.ids import pair_id
from storage.schemas import without_run_id
from tasks.firewall import FirewallConfig, apply_firewall, words

CANDIDATES = without_run_id("candidate_pairs")
PAIRS = without_run_id("pairs")
REJECTIONS = without_run_id("rejections")
Chat = list[dict[str, str]]
Sampler = Callable[[list[Chat], int], list[str]]  # (chats, seed) -> the model's replies

# A dream is a question that needs two facts from different topics, answered by the model in one
# sentence at high temperature. The question is joined from the two facts' own questions; the model
# writes the answer. Measured on the labelled case with the 135M default model: asked to invent both a
# question and its answer, 3 of 128 dreams kept to their two facts ("Your son Emil is your son Pixel",
# "you live in Berlin"); asked to answer a joined question after one worked example, far more do.
_EXAMPLE = (
    {"question": "What is my cat's name?", "answer": "Your cat's name is Pixel."},
    {"question": "Where do I live?", "answer": "You live in Bergen."},
    "Your cat Pixel lives with you in Bergen.",
)


class DreamConfig(BaseModel):
    """How many dreams a deep sleep makes, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    count: int = Field(10, ge=0, description="Grounded dreams wanted per deep sleep.")
    temperature: float = Field(0.9, gt=0, description="Sampling temperature of dream generation.")
    min_p: float = Field(0.1, ge=0, lt=1, description="Drop tokens below this share of the likeliest one's "
                         "probability before sampling. Measured on the labelled case: 9 of 32 dreams kept to their "
                         "facts with 0.1, 4 of 32 with none (temperature 0.9 alone samples too far into the tail).")
    prompts_per_round: int = Field(16, ge=1, description="Dream prompts sampled per round.")
    max_rounds: int = Field(8, ge=1, description="Rounds tried before giving up on reaching `count`.")
    max_tokens: int = Field(60, ge=8, description="Longest dream the model may write.")


def dream_question(a: dict, b: dict) -> str:
    """One question asking for both facts: 'What is my cat's name, and where do I live?'."""
    first = a["question"].strip().rstrip("?.! ")
    second = b["question"].strip().rstrip("?.! ")
    if second.split()[0] not in {"I", "I'm", "I've"}:  # user questions open with a question word
        second = second[0].lower() + second[1:]
    return f"{first}, and {second}?"


def dream_prompt(a: dict, b: dict) -> str:
    """The request: two facts about the user and the joined question to answer in one sentence."""
    return ("Here are two facts about me:\n"
            f"- {a['answer']}\n- {b['answer']}\n"
            f"Answer in one sentence that uses both facts: {dream_question(a, b)}")


def dream_chat(a: dict, b: dict) -> Chat:
    """The dream request as a chat: the worked example first, then the two facts to combine."""
    ex_a, ex_b, ex_reply = _EXAMPLE
    return [{"role": "user", "content": dream_prompt(ex_a, ex_b)}, {"role": "assistant", "content": ex_reply},
            {"role": "user", "content": dream_prompt(a, b)}]


def dream_answer(text: str) -> str:
    """The dream's answer: the reply's first line, without a leading 'A:'."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return re.sub(r"^(?:A|Answer)\s*:\s*", "", line)


def pick_combinations(pairs: pa.Table, k: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """k pairs of row indices, from different fact types where possible (cross-topic combinations)."""
    types = pairs["fact_type"].to_pylist()
    n = len(types)
    if n < 2:
        return []
    out = []
    for _ in range(k):
        i = int(rng.integers(n))
        others = [j for j in range(n) if j != i and types[j] != types[i]] or [j for j in range(n) if j != i]
        out.append((i, int(others[rng.integers(len(others))])))
    return out


_NAME_OR_NUMBER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZÀ-Þ][\w'-]*|\b\d[\d.,:/-]*", re.UNICODE)


def unfaithful(question: str, answer: str, a: dict, b: dict, stop: set[str]) -> str | None:
    """Why a dream misstates the two facts it combines, or None when it keeps to them.

    The firewall grounds words in the person's messages; a dream also has to keep to its two facts:
    the answer states both (a content word of each fact's value), every name and number in it comes
    from those facts ("Your son Emil is your son Pixel" and "you live in Berlin" are refused), and it
    answers rather than repeats the question.
    """
    facts_text = " ".join([a["question"], a["answer"], a["value"], b["question"], b["answer"], b["value"]])
    known = set(words(facts_text))
    said = set(words(answer))
    for fact in (a, b):
        value = [w for w in words(fact["value"]) if w not in stop] or words(fact["value"])
        if value and not said & set(value):
            return f"the answer leaves out the fact {fact['value']!r}"
    invented = [m.group() for m in _NAME_OR_NUMBER.finditer(f"{question}\n{answer}")
                if any(w not in known and w not in stop for w in words(m.group()))]
    if invented:
        return f"names or numbers not in the two facts: {', '.join(dict.fromkeys(invented))}"
    if answer.rstrip().endswith("?") or set(words(answer)) <= set(words(question)):
        return "the answer repeats or asks the question instead of answering it"
    return None


def dream_candidates(pairs: pa.Table, combos: list[tuple[int, int]], texts: list[str],
                     stop: set[str] = frozenset()) -> tuple[pa.Table, pa.Table]:
    """(candidate pairs citing both facts' source exchanges, rejections): the model's texts parsed and held
    to their two facts (`unfaithful`); an empty reply is dropped (there is nothing to reject)."""
    rows = pairs.to_pylist()
    out: dict[str, dict] = {}
    bad: dict[str, dict] = {}
    for (i, j), text in zip(combos, texts):
        first, second = rows[i], rows[j]
        q, a = dream_question(first, second), dream_answer(text)
        if not a:
            continue
        sources = list(dict.fromkeys([*first["source_exchange_ids"], *second["source_exchange_ids"]]))
        pid = pair_id(first["exchange_id"], "dream", q, a)
        if why := unfaithful(q, a, first, second, stop):
            bad[pid] = {"pair_id": pid, "exchange_id": first["exchange_id"], "method": "dream",
                        "fact_type": "dream", "question": q, "answer": a, "reason": "unfaithful-dream",
                        "detail": why, "grounding": None}
            continue
        out[pid] = {
            "pair_id": pid, "exchange_id": first["exchange_id"], "source_exchange_ids": sources,
            "method": "dream", "methods": ["dream"], "fact_type": "dream", "subject": "user", "value": a,
            "question": q, "answer": a, "span_start": None, "span_end": None,
            "fact_key": f"dream:{first['pair_id']}+{second['pair_id']}", "superseded_by": None,
        }
    return pa.Table.from_pylist(list(out.values()), schema=CANDIDATES), pa.Table.from_pylist(list(bad.values()),
                                                                                          schema=REJECTIONS)


def make_dreams(pairs: pa.Table, exchanges: pa.Table, scored: pa.Table, sample: Sampler,
                cfg: DreamConfig, firewall: FirewallConfig, seed: int) -> tuple[pa.Table, pa.Table, int]:
    """(accepted dreams as pairs, rejected dreams, prompts tried): rounds of sampling until `count` pass."""
    rng = np.random.default_rng(seed)
    stop = {w for text in firewall.stopwords for w in words(text)}
    accepted, rejected, tried = [], [], 0
    have = 0
    for round_ in range(cfg.max_rounds):
        if have >= cfg.count:
            break
        combos = pick_combinations(pairs, cfg.prompts_per_round, rng)
        if not combos:
            break
        rows = pairs.to_pylist()
        texts = sample([dream_chat(rows[i], rows[j]) for i, j in combos], seed + round_)
        tried += len(combos)
        candidates, unfaithful_ = dream_candidates(pairs, combos, texts, stop)
        ok, bad = apply_firewall(candidates, exchanges, scored, firewall)
        bad = pa.concat_tables([unfaithful_, bad])
        seen = {p for t in accepted for p in t["pair_id"].to_pylist()}
        ok = ok.filter(pa.array([p not in seen for p in ok["pair_id"].to_pylist()], pa.bool_()))
        accepted.append(ok.slice(0, cfg.count - have))
        rejected.append(bad)
        have += accepted[-1].num_rows
    dreams = pa.concat_tables([PAIRS.empty_table(), *accepted])
    return dreams, pa.concat_tables([REJECTIONS.empty_table(), *rejected]), tried
