"""Parquet datasets addressed by name: write once, atomically; read without ever seeing partial files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.atomic import atomic_path
from storage.errors import SchemaError
from storage.home import Home
from storage.schemas import schema_of


def conform(table: str, data: pa.Table, run_id: str) -> pa.Table:
    """Return `data` with the dataset's exact schema, filling `run_id`; raise naming bad columns."""
    schema = schema_of(table)
    if "run_id" in schema.names and "run_id" not in data.column_names:
        data = data.append_column("run_id", pa.array([run_id] * data.num_rows, pa.string()))
    missing = [n for n in schema.names if n not in data.column_names]
    extra = [n for n in data.column_names if n not in schema.names]
    if missing or extra:
        raise SchemaError(
            f"table {table!r}: missing columns {missing}, unexpected columns {extra}; "
            f"see storage/schemas.py"
        )
    data = data.select(schema.names)
    try:
        return data.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise SchemaError(f"table {table!r} does not match its schema: {exc}") from None


def partition_dir(home: Home, table: str, run_id: str) -> Path:
    """The folder holding one run's files of one table."""
    return home.table_dir(table) / f"run_id={run_id}"


def write_table(home: Home, table: str, run_id: str, data: pa.Table) -> Path | None:
    """Write `data` as a new immutable Parquet file of `table` for `run_id`; None when empty.

    The file name is the content hash, so writing the same rows twice is a no-op.
    """
    data = conform(table, data, run_id)
    if data.num_rows == 0:
        return None
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, compression="zstd")
    buf = sink.getvalue()
    digest = hashlib.sha256(buf).hexdigest()[:16]
    final = partition_dir(home, table, run_id) / f"part-{digest}.parquet"
    if final.exists():
        return final
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buf.to_pybytes())
    return final


def table_files(home: Home, table: str, run_ids: list[str] | None = None) -> list[Path]:
    """Every finished Parquet file of `table` (temp files end in .tmp and are never listed)."""
    schema_of(table)  # unknown table names fail loudly
    root = home.table_dir(table)
    if not root.exists():
        return []
    if run_ids is None:
        return sorted(root.glob("run_id=*/*.parquet"))
    files: list[Path] = []
    for rid in run_ids:
        files.extend(sorted((root / f"run_id={rid}").glob("*.parquet")))
    return files


def read_table(home: Home, table: str, run_ids: list[str] | None = None,
               columns: list[str] | None = None) -> pa.Table:
    """Read all (or some runs') rows of `table` with its schema; empty when nothing was written."""
    schema = schema_of(table)
    files = table_files(home, table, run_ids)
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    if not files:
        return schema.empty_table()
    parts = [pq.read_table(f, columns=columns, schema=schema_of(table)) for f in files]
    return pa.concat_tables([p.select(schema.names) for p in parts])


def export_parquet(table: pa.Table, path: Path) -> None:
    """Write a table to a Parquet file outside the warehouse (an export a person asked for), atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
