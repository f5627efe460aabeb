"""Stages 1-3 as Prefect tasks: read through storage, call the pure stage, validate, then write."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import candidates_frame, pairs_frame, scored_frame
from flows.checks import check
from storage.home import Home
from storage.warehouse import write_table


@task(name="score", cache_policy=NO_CACHE)
def score_task(home: Home, settings, run_id: str, exchanges: pa.Table) -> pa.Table:
    """Stage 1: score every new exchange (column-wise) and keep the ones worth remembering."""
    from tasks.scoring import score_exchanges

    scored = score_exchanges(exchanges, settings.scoring)
    check(home, run_id, "scored", scored_frame(scored, exchanges), id_column="exchange_id",
          params={"new_exchanges": exchanges.num_rows})
    write_table(home, "scored_exchanges", run_id, scored)
    retained = int(pc.sum(scored["retained"]).as_py() or 0)
    get_run_logger().info(f"scored {scored.num_rows} exchange(s), retained {retained}")
    return scored


@task(name="extract", cache_policy=NO_CACHE)
def extract_task(home: Home, settings, run_id: str, exchanges: pa.Table, scored: pa.Table,
                 generate=None) -> pa.Table:
    """Stage 2: template (and, with a model, model-written) question-answer pairs about the user."""
    from tasks.extraction import extract_model_pairs, extract_template_pairs, merge_candidates

    keep = scored.filter(scored["retained"])["exchange_id"]
    retained = exchanges.filter(pc.is_in(exchanges["exchange_id"], value_set=keep))
    parts = [extract_template_pairs(retained, settings.extraction)]
    if generate is not None and retained.num_rows:
        parts.append(extract_model_pairs(retained, generate, settings.extraction))
    candidates = merge_candidates(pa.concat_tables(parts), retained)
    check(home, run_id, "candidates", candidates_frame(candidates, exchanges), id_column="pair_id")
    write_table(home, "candidate_pairs", run_id, candidates)
    by = Counter(candidates["method"].to_pylist())
    get_run_logger().info(f"extracted {candidates.num_rows} candidate pair(s) from {retained.num_rows} "
                          f"exchange(s): {dict(by)}")
    return candidates


@task(name="firewall", cache_policy=NO_CACHE)
def firewall_task(home: Home, settings, run_id: str, candidates: pa.Table, exchanges: pa.Table,
                  scored: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Stage 3: accept only grounded, secret-free pairs about the user; every rejection says why."""
    from tasks.firewall import apply_firewall, find_secrets

    pairs, rejections = apply_firewall(candidates, exchanges, scored, settings.firewall)
    has_secret = [bool(find_secrets(q + "\n" + a)) for q, a in
                  zip(pairs["question"].to_pylist(), pairs["answer"].to_pylist())]
    check(home, run_id, "pairs", pairs_frame(pairs, exchanges, has_secret), id_column="pair_id",
          params={"min_grounding": settings.firewall.min_grounding})
    write_table(home, "pairs", run_id, pairs)
    write_table(home, "rejections", run_id, rejections)
    reasons = Counter(rejections["reason"].to_pylist())
    get_run_logger().info(f"firewall: accepted {pairs.num_rows}, rejected {rejections.num_rows} {dict(reasons)}")
    return pairs, rejections
