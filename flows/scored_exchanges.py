"""Stage 1 as a Prefect task: score the new exchanges, validate, write `scored_exchanges`."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import scored_frame
from flows.checks import check
from storage.home import Home
from storage.warehouse import write_table
from tasks.extraction import ExtractionConfig, keep_stated_facts
from tasks.scoring import ScoringConfig, score_exchanges


@task(name="score", cache_policy=NO_CACHE)
def score_task(home: Home, cfg: ScoringConfig, run_id: str, exchanges: pa.Table,
               extraction: ExtractionConfig | None = None) -> pa.Table:
    """Stage 1: score every new exchange (column-wise) and keep the ones worth remembering, and every one
    the parse rules read a fact from (`importance:fact`)."""
    scored = score_exchanges(exchanges, cfg)
    if extraction is not None:
        scored = keep_stated_facts(exchanges, scored, extraction)
    check(home, run_id, "scored_exchanges", scored_frame(scored, exchanges), id_column="exchange_id",
          params={"new_exchanges": exchanges.num_rows})
    write_table(home, "scored_exchanges", run_id, scored)
    retained = int(pc.sum(scored["retained"]).as_py() or 0)
    get_run_logger().info(f"scored {scored.num_rows} exchange(s), retained {retained}")
    return scored
