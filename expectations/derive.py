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
