"""Stage 3 as a Prefect task: the hallucination firewall, validate, write `pairs` and `rejections`."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import pairs_frame, rejections_frame
from flows.checks import check
from storage.forget import forgotten
from storage.home import Home
from storage.warehouse import write_table
from tasks.firewall import MASK_MARK, FirewallConfig, apply_firewall, secret_spans


def _has_secret(cfg: FirewallConfig, table: pa.Table) -> list[bool]:
    """Per row: does its question or answer hold a secret in the clear?"""
    def clear(text: str) -> bool:
        return any(MASK_MARK not in text[s:e] for _, s, e in secret_spans(text, cfg.entropy_bits, cfg.entropy_min_len))

    return [clear(q + "\n" + a) for q, a in zip(table["question"].to_pylist(), table["answer"].to_pylist())]


def check_pairs(home: Home, cfg: FirewallConfig, run_id: str, pairs: pa.Table, rejections: pa.Table,
                exchanges: pa.Table) -> None:
    """Validate accepted and rejected pairs before either lands; secrets are looked for with the firewall's own
    thresholds, so the firewall and its suites never disagree."""
    check(home, run_id, "pairs", pairs_frame(pairs, exchanges, _has_secret(cfg, pairs)), id_column="pair_id",
          params={"min_grounding": cfg.min_grounding})
    check(home, run_id, "rejections", rejections_frame(rejections, exchanges, _has_secret(cfg, rejections)),
          id_column="pair_id")


@task(name="firewall", cache_policy=NO_CACHE)
def firewall_task(home: Home, cfg: FirewallConfig, run_id: str, candidates: pa.Table, exchanges: pa.Table,
                  scored: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Stage 3: accept only grounded, secret-free pairs about the user; every rejection says why."""
    pairs, rejections = apply_firewall(candidates, exchanges, scored, cfg, forgotten(home))
    check_pairs(home, cfg, run_id, pairs, rejections, exchanges)
    write_table(home, "pairs", run_id, pairs)
    write_table(home, "rejections", run_id, rejections)
    reasons = Counter(rejections["reason"].to_pylist())
    get_run_logger().info(f"firewall: accepted {pairs.num_rows}, rejected {rejections.num_rows} {dict(reasons)}")
    return pairs, rejections
