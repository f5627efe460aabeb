"""Adapter folders: adapters/<adapter_id>/ holding the weights, adapter_config.json, the loss curve and a manifest.

A folder is written once, atomically, and never changed (a rejected adapter stays for audit). Storage
does not import MLX: the caller passes a writer that puts the weights file at a path it is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from storage.atomic import atomic_dir
from storage.errors import IntegrityError
from storage.registry import MANIFEST, file_hashes, verify_folder
from storage.runs import utcnow

ADAPTER_WEIGHTS = "adapters.safetensors"  # the names mlx-lm's load(..., adapter_path=...) reads
ADAPTER_CONFIG = "adapter_config.json"
STEPS_FILE = "train_steps.parquet"


def find_adapter(adapters_dir: Path, adapter_id: str) -> Path | None:
    """The verified folder of an already-saved adapter, or None; a tampered one raises IntegrityError."""
    folder = adapters_dir / adapter_id
    if not folder.exists():
        return None
    manifest = verify_folder(folder)
    if manifest.get("adapter_id") != adapter_id:
        raise IntegrityError(f"{folder}: manifest names adapter {manifest.get('adapter_id')!r}, not {adapter_id!r}; "
                             "move the folder aside to retrain")
    return folder


def save_adapter(adapters_dir: Path, adapter_id: str, *, write_weights: Callable[[Path], None],
                 adapter_config: dict, steps: pa.Table, manifest: dict) -> Path:
    """adapters/<adapter_id>/ written atomically: the weights (by `write_weights`), adapter_config.json, the
    steps and manifest.json (`manifest` plus the id, the time and every file's sha256); an existing one is reused."""
    existing = find_adapter(adapters_dir, adapter_id)
    if existing is not None:
        return existing  # a resumed run: the same inputs already produced this adapter
    final = adapters_dir / adapter_id
    with atomic_dir(final) as tmp:
        write_weights(tmp / ADAPTER_WEIGHTS)
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(adapter_config, indent=2, sort_keys=True))
        pq.write_table(steps, tmp / STEPS_FILE)  # the loss curve travels with the adapter
        full = {**manifest, "adapter_id": adapter_id, "created_at": utcnow().isoformat(), "files": file_hashes(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True))
    return final


def adapter_manifest(folder: Path) -> dict:
    """A saved adapter's manifest (verify the folder first: find_adapter)."""
    return json.loads((folder / MANIFEST).read_text())


def adapter_steps(folder: Path) -> pa.Table | None:
    """The step records saved with an adapter, or None for a folder saved without them."""
    path = folder / STEPS_FILE
    return pq.read_table(path) if path.exists() else None
