"""DuckDB over the warehouse: one view per table, named like the table."""

from __future__ import annotations

import duckdb

from storage.home import Home
from storage.schemas import SCHEMAS, schema_of
from storage.warehouse import table_files


def _empty_view_sql(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A typed zero-row SELECT for a table that has no files yet."""
    con.register("_empty_schema", schema_of(table).empty_table())
    cols = con.execute("DESCRIBE _empty_schema").fetchall()
    con.unregister("_empty_schema")
    return "SELECT " + ", ".join(f'CAST(NULL AS {typ}) AS "{name}"' for name, typ, *_ in cols) + " LIMIT 0"


def view_sql(con: duckdb.DuckDBPyConnection, home: Home, table: str) -> str:
    """The SELECT behind a table's view: its Parquet glob, or an empty typed row set."""
    if not table_files(home, table):
        return _empty_view_sql(con, table)
    glob = str(home.table_dir(table) / "run_id=*" / "*.parquet").replace("'", "''")
    # hive_partitioning off: run_id is stored in the files and must stay a string.
    return f"SELECT * FROM read_parquet('{glob}', hive_partitioning=false, union_by_name=true)"


def connect(home: Home, tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per warehouse table (never locks any file)."""
    con = duckdb.connect(":memory:")
    for table in tables or sorted(SCHEMAS):
        con.execute(f'CREATE OR REPLACE VIEW "{table}" AS {view_sql(con, home, table)}')
    return con


def write_catalog_file(home: Home) -> bool:
    """Refresh `catalog.duckdb` (views for external tools); False if another process holds it."""
    try:
        con = duckdb.connect(str(home.catalog_file))
    except duckdb.IOException:
        return False
    try:
        for table in sorted(SCHEMAS):
            con.execute(f'CREATE OR REPLACE VIEW "{table}" AS {view_sql(con, home, table)}')
    finally:
        con.close()
    return True
