"""Check columns that need a join (referential integrity), added before a suite runs."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc


def exchanges_frame(exchanges: pa.Table, messages: pa.Table) -> pa.Table:
    """Exchanges (text lengths, not texts: GE hashes every cell) plus their messages' roles and existence."""
    con = duckdb.connect(":memory:")
    con.register("ex", exchanges)
    con.register("msg", messages.select(["message_id", "role"]))
    return con.sql(
        """
        SELECT ex.* EXCLUDE (user_text, assistant_text),
               length(ex.user_text) AS user_chars, length(ex.assistant_text) AS assistant_chars,
               um.role AS user_role, am.role AS assistant_role,
               (um.message_id IS NOT NULL AND am.message_id IS NOT NULL) AS messages_found
        FROM ex
        LEFT JOIN msg um ON um.message_id = ex.user_message_id
        LEFT JOIN msg am ON am.message_id = ex.assistant_message_id
        """
    ).to_arrow_table()


def _found(table: pa.Table, key: str, ref: pa.Array, name: str) -> pa.Table:
    """`table` plus a boolean column `name`: whether `key` occurs in `ref`."""
    return table.append_column(name, pc.is_in(table[key], value_set=ref))


def scored_frame(scored: pa.Table, exchanges: pa.Table) -> pa.Table:
    """Scores plus |combined − mean of the three| and whether the exchange exists."""
    mean = pc.divide(pc.add(pc.add(scored["novelty"], scored["importance"]), scored["utility"]), 3.0)
    frame = scored.drop_columns(["rules"]).append_column("mean_error", pc.abs(pc.subtract(scored["combined"], mean)))
    return _found(frame, "exchange_id", exchanges["exchange_id"], "exchange_found")


def candidates_frame(candidates: pa.Table, exchanges: pa.Table) -> pa.Table:
    """Candidate ids, methods, text lengths, and whether their exchange exists."""
    frame = pa.table({
        "pair_id": candidates["pair_id"], "exchange_id": candidates["exchange_id"], "method": candidates["method"],
        "question_chars": pc.utf8_length(pc.utf8_trim_whitespace(candidates["question"])),
        "answer_chars": pc.utf8_length(pc.utf8_trim_whitespace(candidates["answer"])),
    })
    return _found(frame, "exchange_id", exchanges["exchange_id"], "exchange_found")


def pairs_frame(pairs: pa.Table, exchanges: pa.Table, has_secret: list[bool]) -> pa.Table:
    """Accepted pairs' ids and grounding, the caller's secret check, and referential checks."""
    successor_ok = pc.or_(pc.is_null(pairs["superseded_by"]),
                          pc.is_in(pairs["superseded_by"], value_set=pairs["pair_id"]))
    frame = pa.table({
        "pair_id": pairs["pair_id"], "exchange_id": pairs["exchange_id"], "grounding": pairs["grounding"],
        "has_secret": pa.array(has_secret, pa.bool_()), "successor_found": pc.fill_null(successor_ok, False),
    })
    return _found(frame, "exchange_id", exchanges["exchange_id"], "exchange_found")


def training_set_frame(examples: pa.Table, known_pair_ids: pa.Array, active_ids: pa.Array,
                       grounded_dream_ids: pa.Array, replay_target: int) -> pa.Table:
    """Example ids and sources with lineage checks and |replay examples − target| on every row."""
    source = examples["source"]
    needs_pair = pc.is_in(source, value_set=pa.array(["new", "replay"]))
    pair_ok = pc.or_(pc.invert(needs_pair), pc.fill_null(pc.is_in(examples["pair_id"], value_set=known_pair_ids), False))
    is_replay = pc.equal(source, "replay")
    active_ok = pc.or_(pc.invert(is_replay), pc.fill_null(pc.is_in(examples["pair_id"], value_set=active_ids), False))
    is_dream = pc.equal(source, "dream")
    dream_ok = pc.or_(pc.invert(is_dream), pc.fill_null(pc.is_in(examples["pair_id"], value_set=grounded_dream_ids), False))
    replays = int(pc.sum(is_replay).as_py() or 0)
    n = examples.num_rows
    return pa.table({
        "example_id": examples["example_id"], "source": source, "question": examples["question"],
        "answer": examples["answer"], "pair_found": pair_ok, "replay_item_active": active_ok, "dream_grounded": dream_ok,
        "replay_share_error": pa.array([abs(replays - replay_target)] * n, pa.int64()),
        "text_chars": pc.utf8_length(examples["text"]),
    })


def buffer_frame(buffer: pa.Table) -> pa.Table:
    """Buffer rows plus the number of active items on every row (for the capacity check)."""
    active = int(pc.sum(pc.equal(buffer["status"], "active")).as_py() or 0)
    return buffer.select(["pair_id", "priority", "status", "replay_count"]).append_column(
        "active_items", pa.array([active] * buffer.num_rows, pa.int64()))


def rejections_frame(rejections: pa.Table, exchanges: pa.Table, has_secret: list[bool]) -> pa.Table:
    """Rejected pairs' ids and reasons, the caller's secret check on their stored text, and whether their
    exchange exists."""
    frame = pa.table({"pair_id": rejections["pair_id"], "exchange_id": rejections["exchange_id"],
                      "reason": rejections["reason"], "has_secret": pa.array(has_secret, pa.bool_())})
    return _found(frame, "exchange_id", exchanges["exchange_id"], "exchange_found")
