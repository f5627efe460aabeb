"""Preview a night's curation without training: sessions ingested as `slowwave ingest` does, then stages
1-3 (scoring, rule extraction — regex families and spaCy parse rules —, merging, the firewall) with the real
pure stage functions and no model.

The benchmarks (bench/extraction.py, bench/experiments.py) and the tests measure extraction through this,
so what they measure is what a sleep would accept.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from flows.ingest import ingest_paths
from storage.home import Home
from storage.warehouse import read_table
from tasks.extraction import extract_template_pairs, keep_stated_facts, merge_candidates
from tasks.firewall import apply_firewall
from tasks.scoring import score_exchanges


def curate_exchanges(exchanges: pa.Table, settings) -> dict[str, pa.Table]:
    """Stages 1-3 on an exchanges table: scored, retained, candidates, pairs and rejections."""
    scored = keep_stated_facts(exchanges, score_exchanges(exchanges, settings.scoring), settings.extraction)
    retained = exchanges.filter(pc.is_in(exchanges["exchange_id"],
                                         value_set=scored.filter(scored["retained"])["exchange_id"]))
    candidates = merge_candidates(extract_template_pairs(retained, settings.extraction), retained)
    pairs, rejections = apply_firewall(candidates, exchanges, scored, settings.firewall)
    return {"exchanges": exchanges, "scored": scored, "retained": retained, "candidates": candidates,
            "pairs": pairs, "rejections": rejections}


def curate_sessions(home: Home, paths: list[Path], settings) -> dict[str, pa.Table]:
    """The session files/folders ingested into home (the real ingest), then stages 1-3 on all its exchanges."""
    ingest_paths(home.ensure(), paths, settings.ingest)
    return curate_exchanges(read_table(home, "exchanges"), settings)


def curate_case(home: Home, case: Path, settings) -> dict[str, pa.Table]:
    """An evaluation case's sessions/ curated into home (see curate_sessions)."""
    return curate_sessions(home, [case / "sessions"], settings)


def dry_run_lines(home: Home, run_id: str, firewall=None, limit: int = 50) -> list[str]:
    """What a dry run found: the pairs tonight would learn, the rejections by reason (secrets masked) and the mix."""
    from collections import Counter

    from flows.artifacts import pair_rows, rejection_rows
    from storage.runs import read_run

    pairs, rejections = read_run(home, "pairs", run_id), read_run(home, "rejections", run_id)
    examples = read_run(home, "training_examples", run_id, columns=["source"])
    lines = [f"dry run {run_id}: tonight would learn {pairs.num_rows} pair(s); nothing was trained or promoted, "
             "and later sleeps ignore this run"]
    rows = pair_rows(pairs, read_table(home, "exchanges"), firewall)
    lines += [f"  learn   {r['question']} -> {r['answer']}  ({r['source']})" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"  … and {len(rows) - limit} more (pairs table, run_id = {run_id})")
    reasons = Counter(rejections["reason"].to_pylist())
    lines.append("rejected: " + (", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none"))
    lines += [f"  {r['reason']:8} {r['question']} -> {r['answer']}  ({r['detail']})"
              for r in rejection_rows(rejections.slice(0, limit), firewall)]
    mix = Counter(examples["source"].to_pylist())
    lines.append("mix: " + (", ".join(f"{k} {v}" for k, v in sorted(mix.items())) or "nothing")
                 + f" (total {examples.num_rows})")
    return lines
