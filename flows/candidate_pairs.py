"""Stage 2 as a Prefect task: extract candidate question-answer pairs, validate, write `candidate_pairs`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import candidates_frame
from flows.checks import check
from storage.home import Home
from storage.warehouse import write_table
from tasks.extraction import (
    ExtractionConfig,
    Generate,
    extract_model_pairs,
    extract_template_pairs,
    merge_candidates,
)


@task(name="extract", cache_policy=NO_CACHE)
def extract_task(home: Home, cfg: ExtractionConfig, run_id: str, exchanges: pa.Table, scored: pa.Table,
                 generate: Generate | None = None) -> pa.Table:
    """Stage 2: template (and, with a model, model-written) question-answer pairs about the user."""
    keep = scored.filter(scored["retained"])["exchange_id"]
    retained = exchanges.filter(pc.is_in(exchanges["exchange_id"], value_set=keep))
    parsed: Counter = Counter()  # the parser's numbers: sentences parsed, left out by reason, facts, statements
    parts = [extract_template_pairs(retained, cfg, parsed)]
    if generate is not None and retained.num_rows:
        parts.append(extract_model_pairs(retained, generate, cfg))
    candidates = merge_candidates(pa.concat_tables(parts), retained)
    check(home, run_id, "candidate_pairs", candidates_frame(candidates, exchanges), id_column="pair_id")
    write_table(home, "candidate_pairs", run_id, candidates)
    by = Counter(candidates["method"].to_pylist())
    get_run_logger().info(f"extracted {candidates.num_rows} candidate pair(s) from {retained.num_rows} "
                          f"exchange(s): {dict(by)}; parser: {dict(sorted(parsed.items()))}")
    return candidates


def extraction_generator(model_dir: Path, cfg: ExtractionConfig) -> Generate:
    """The model that writes question-answer pairs when `extraction.use_model` is on (greedy, batched)."""
    from tasks.model.answering import generate_chats
    from tasks.model.loading import load_model

    model, tok = load_model(model_dir)

    def generate(chats: list[list[dict]]) -> list[str]:
        return generate_chats(model, tok, chats, max_tokens=cfg.model_max_tokens, batch_size=cfg.model_batch_size)

    return generate
