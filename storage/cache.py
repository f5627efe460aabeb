"""Data a model generated once and keeps across homes (anchor answers, rehearsal prose, gate measurements).

Each item is addressed by a kind and a content key the caller derives from everything it depends on
(the model's file hashes, the inputs, the settings, the seed), so a cached item is never stale. Items
live under the user cache ($SLOWWAVE_CACHE, else $XDG_CACHE_HOME/slowwave); a read-only `shipped`
folder (data made once for the default model) is looked in first. Writes are atomic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from storage.atomic import atomic_path, write_text_atomic
from storage.home import cache_root

META_KEY = b"slowwave"  # parquet schema metadata: what the item was made with (e.g. its seed)




def cached_path(kind: str, key: str, suffix: str, shipped: Path | None = None) -> Path:
    """The item's shipped file if there is one, else its place in the user cache."""
    name = f"{key}{suffix}"
    if shipped is not None and (shipped / name).exists():
        return shipped / name
    return cache_root() / kind / name


def read_or_make(kind: str, key: str, make: Callable[[], pa.Table], *, made_with: dict | None = None,
                 shipped: Path | None = None) -> pa.Table:
    """The cached table for (kind, key); made by `make()` and written first if missing. `made_with` is kept in
    the file's metadata (read it back with made_with())."""
    path = cached_path(kind, key, ".parquet", shipped)
    if not path.exists():
        table = make()
        if made_with is not None:
            table = table.replace_schema_metadata({META_KEY: json.dumps(made_with, sort_keys=True).encode()})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    return pq.read_table(path)


def made_with(table: pa.Table) -> dict:
    """What a cached table records about how it was made ({} when nothing)."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def read_or_make_json(kind: str, key: str, make: Callable[[], dict], *, shipped: Path | None = None) -> dict:
    """The cached JSON object for (kind, key) (the shipped one first); made by `make()` and written first if
    missing."""
    path = cached_path(kind, key, ".json", shipped)
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    write_text_atomic(path, json.dumps(value))
    return value
