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
from storage.errors import ModelError
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


def extraction_generator(model: Path | str, cfg: ExtractionConfig) -> Generate:
    """The model that writes question-answer pairs (greedy, batched): `[extraction] model` (a folder or a Hugging
    Face id) or, with `use_model`, the current version's folder."""
    from tasks.model.answering import generate_chats
    from tasks.model.loading import load_model

    try:
        model, tok = load_model(Path(model))
    except (OSError, ValueError) as exc:  # mlx-lm: no weights, a bad config, no network for a hub id
        reason = " ".join(str(exc).split())  # one line: mlx-lm and the hub client write several
        raise ModelError(f"[extraction] model {str(model)!r}: cannot be loaded ({reason[:300]})") from exc

    def generate(chats: list[list[dict]]) -> list[str]:
        # Starting the reply with "Q:" holds a small model to the format parse_qa_pairs reads.
        return generate_chats(model, tok, chats, max_tokens=cfg.model_max_tokens, batch_size=cfg.model_batch_size,
                              reply_prefix="Q:")

    return generate
