"""Stage 2 as a Prefect task: extract candidate question-answer pairs, validate, write `candidate_pairs`."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import candidates_frame
from flows.checks import check
from storage.home import Home
from storage.warehouse import write_table


@task(name="extract", cache_policy=NO_CACHE)
def extract_task(home: Home, settings, run_id: str, exchanges: pa.Table, scored: pa.Table,
                 generate=None) -> pa.Table:
    """Stage 2: template (and, with a model, model-written) question-answer pairs about the user."""
    from tasks.extraction import (
        extract_model_pairs,
        extract_template_pairs,
        merge_candidates,
    )

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
