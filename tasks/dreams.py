"""Dreams (deep sleep): the model combines facts across topics at high temperature; the firewall keeps the grounded ones."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from storage.ids import pair_id
from storage.schemas import without_run_id
from tasks.extraction import parse_qa_pairs
from tasks.firewall import FirewallConfig, apply_firewall

CANDIDATES = without_run_id("candidate_pairs")
PAIRS = without_run_id("pairs")
Sampler = Callable[[list[str], int], list[str]]  # (prompts, seed) -> texts


class DreamConfig(BaseModel):
    """How many dreams a deep sleep makes, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    count: int = Field(10, ge=0, description="Grounded dreams wanted per deep sleep.")
    temperature: float = Field(0.9, gt=0, description="Sampling temperature of dream generation.")
    prompts_per_round: int = Field(16, ge=1, description="Dream prompts sampled per round.")
    max_rounds: int = Field(4, ge=1, description="Rounds tried before giving up on reaching `count`.")
    max_tokens: int = Field(80, ge=8, description="Longest dream the model may write.")


def dream_prompt(a: dict, b: dict) -> str:
    """The prompt asking for one question that needs two facts about the user."""
    return ("Here are two facts about me:\n"
            f"- {a['answer']}\n- {b['answer']}\n"
            "Write one question about me that uses both facts, and its answer, in this form:\n"
            "Q: <question>\nA: <answer>")


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


def dream_candidates(pairs: pa.Table, combos: list[tuple[int, int]], texts: list[str]) -> pa.Table:
    """Parse the model's texts into candidate pairs that cite both facts' source exchanges."""
    rows = pairs.to_pylist()
    out: dict[str, dict] = {}
    for (i, j), text in zip(combos, texts):
        parsed = parse_qa_pairs(text, max_pairs=1)
        if not parsed:
            continue
        q, a = parsed[0]
        first, second = rows[i], rows[j]
        sources = list(dict.fromkeys([*first["source_exchange_ids"], *second["source_exchange_ids"]]))
        pid = pair_id(first["exchange_id"], "dream", q, a)
        out[pid] = {
            "pair_id": pid, "exchange_id": first["exchange_id"], "source_exchange_ids": sources,
            "method": "dream", "methods": ["dream"], "fact_type": "dream", "subject": "user", "value": a,
            "question": q, "answer": a, "span_start": None, "span_end": None,
            "fact_key": f"dream:{first['pair_id']}+{second['pair_id']}", "superseded_by": None,
        }
    return pa.Table.from_pylist(list(out.values()), schema=CANDIDATES)


def make_dreams(pairs: pa.Table, exchanges: pa.Table, scored: pa.Table, sample: Sampler,
                cfg: DreamConfig, firewall: FirewallConfig, seed: int) -> tuple[pa.Table, pa.Table, int]:
    """(accepted dreams as pairs, rejected dreams, prompts tried): rounds of sampling until `count` pass."""
    rng = np.random.default_rng(seed)
    accepted, rejected, tried = [], [], 0
    have = 0
    for round_ in range(cfg.max_rounds):
        if have >= cfg.count:
            break
        combos = pick_combinations(pairs, cfg.prompts_per_round, rng)
        if not combos:
            break
        rows = pairs.to_pylist()
        texts = sample([dream_prompt(rows[i], rows[j]) for i, j in combos], seed + round_)
        tried += len(combos)
        ok, bad = apply_firewall(dream_candidates(pairs, combos, texts), exchanges, scored, firewall)
        seen = {p for t in accepted for p in t["pair_id"].to_pylist()}
        ok = ok.filter(pa.array([p not in seen for p in ok["pair_id"].to_pylist()], pa.bool_()))
        accepted.append(ok.slice(0, cfg.count - have))
        rejected.append(bad)
        have += accepted[-1].num_rows
    dreams = pa.concat_tables([PAIRS.empty_table(), *accepted])
    return dreams, pa.concat_tables([without_run_id("rejections").empty_table(), *rejected]), tried
