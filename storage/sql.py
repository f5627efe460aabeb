"""DuckDB helpers the lineage queries share: constant IN-lists, Arrow tables registered for one block, per-run
lookups that let Parquet's run_id statistics skip files, and id-prefix resolution with clear errors."""

from __future__ import annotations

from contextlib import contextmanager

import duckdb
import pyarrow as pa

from storage.errors import LineageError

_SHOWN = 5  # ids named in an "ambiguous" error


def in_list(values) -> str:
    """A SQL IN-list of string literals (ids read from the warehouse, quotes doubled); `(NULL)` matches none."""
    vals = sorted({v for v in values if v is not None})
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in vals) + ")" if vals else "(NULL)"


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **tables: pa.Table):
    """Arrow tables visible to SQL under the given names for the duration of the block."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Cache Parquet footers on this connection: every view reads all its files' schemas when a query binds it
    (the parts are immutable, so a cached footer never goes stale)."""
    con.execute("SET parquet_metadata_cache = true")


def arrow(con: duckdb.DuckDBPyConnection, sql: str, **params) -> pa.Table:
    return con.sql(sql, params=params or None).to_arrow_table()


def record(head: pa.Table, **sections: pa.Table) -> pa.Table:
    """`head` (one row) with each section's rows appended as one list<struct> column."""
    for name, rows in sections.items():
        head = head.append_column(name, pa.array([rows.to_pylist()], pa.list_(pa.struct(list(rows.schema)))))
    return head


def first_by_run(con: duckdb.DuckDBPyConnection, table: str, key: str, ids: list[str], runs: list[str],
                  columns: str = "*") -> pa.Table:
    """One row of `table` per id in `ids` (the earliest found): looked for in the files of `runs` first, where
    they normally are (so every other file is skipped), then, for any id not found there, in every file."""
    sql = f"""SELECT {columns} FROM "{table}" WHERE {key} IN {{ids}} {{runs}}
              QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY run_id) = 1"""
    found = arrow(con, sql.format(ids=in_list(ids), runs=f"AND run_id IN {in_list(runs)}"))
    missing = set(ids) - set(found[key].to_pylist())
    if missing:
        found = pa.concat_tables([found, arrow(con, sql.format(ids=in_list(missing), runs=""))])
    return found


def resolve_id(con: duckdb.DuckDBPyConnection, ref: str, prefix: str, what: str, tables: list[str],
               key: str) -> str:
    """The one id starting with `ref` (its `prefix` may be left out), or LineageError naming the matches."""
    ref = (ref or "").strip()
    if not ref:
        raise LineageError(f"give a {what} id (or a unique prefix of one)")
    wanted = ref if ref.startswith(prefix) else prefix + ref
    union = " UNION ".join(f"SELECT {key} FROM {t} WHERE starts_with({key}, $p)" for t in tables)
    ids = [r[0] for r in con.sql(f"SELECT DISTINCT {key} FROM ({union}) ORDER BY 1 LIMIT {_SHOWN + 1}",
                                 params={"p": wanted}).fetchall()]
    if not ids:
        hint = "; find pairs with `slowwave lineage --search WORDS`" if what == "pair" else ""
        raise LineageError(f"no {what} matches {ref!r} in the warehouse{hint}")
    if len(ids) > 1:
        more = ", …" if len(ids) > _SHOWN else ""
        raise LineageError(f"{what} id prefix {ref!r} is ambiguous: it matches {', '.join(ids[:_SHOWN])}{more}; "
                           f"give more characters")
    return ids[0]
