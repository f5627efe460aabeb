"""Preview a night's curation without training: sessions ingested as `slowwave ingest` does, then stages
1-3 (scoring, pattern extraction, merging, the firewall) with the real pure stage functions and no model.

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
from tasks.extraction import extract_template_pairs, merge_candidates
from tasks.firewall import apply_firewall
from tasks.scoring import score_exchanges


def curate_exchanges(exchanges: pa.Table, settings) -> dict[str, pa.Table]:
    """Stages 1-3 on an exchanges table: scored, retained, candidates, pairs and rejections."""
    scored = score_exchanges(exchanges, settings.scoring)
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
