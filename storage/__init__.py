"""The warehouse: home layout, schemas, atomic Parquet writes, DuckDB catalog, ids, lineage, registry."""
