"""Check columns that need a join (referential integrity), added before a suite runs."""

from __future__ import annotations

import duckdb
import pyarrow as pa


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
