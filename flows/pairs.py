"""Stage 3 as a Prefect task: the hallucination firewall, validate, write `pairs` and `rejections`."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import pairs_frame
from flows.checks import check
from storage.home import Home
from storage.warehouse import write_table
from tasks.firewall import FirewallConfig, apply_firewall, secret_spans


@task(name="firewall", cache_policy=NO_CACHE)
def firewall_task(home: Home, cfg: FirewallConfig, run_id: str, candidates: pa.Table, exchanges: pa.Table,
                  scored: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Stage 3: accept only grounded, secret-free pairs about the user; every rejection says why."""
    pairs, rejections = apply_firewall(candidates, exchanges, scored, cfg)
    # The suite checks secrets with the firewall's own thresholds, so the two can never disagree.
    has_secret = [bool(secret_spans(q + "\n" + a, cfg.entropy_bits, cfg.entropy_min_len)) for q, a in
                  zip(pairs["question"].to_pylist(), pairs["answer"].to_pylist())]
    check(home, run_id, "pairs", pairs_frame(pairs, exchanges, has_secret), id_column="pair_id",
          params={"min_grounding": cfg.min_grounding})
    write_table(home, "pairs", run_id, pairs)
    write_table(home, "rejections", run_id, rejections)
    reasons = Counter(rejections["reason"].to_pylist())
    get_run_logger().info(f"firewall: accepted {pairs.num_rows}, rejected {rejections.num_rows} {dict(reasons)}")
    return pairs, rejections
