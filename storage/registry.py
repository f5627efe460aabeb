"""Model versions: immutable folders `models/vNNNN/` with a manifest, and an atomic `current` pointer."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from storage.atomic import atomic_dir, write_text_atomic
from storage.errors import IntegrityError, ModelError
from storage.home import Home
from storage.ids import sha256_bytes, sha256_file
from storage.runs import utcnow
from storage.warehouse import read_table, write_table

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_VERSION = re.compile(r"^v\d{4}$")


class Manifest(BaseModel):
    """A model version's manifest.json: where the version came from, and the sha256 of every file in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str = Field(pattern=_VERSION.pattern, description="The version's name, the same as its folder's.")
    parent: str | None = Field(description="The version it was fused from; None for a base model.")
    adapter_id: str | None = Field(description="The adapter fused into the parent; None for a base model.")
    base: str = Field(description="The base model it descends from (model.base when it was pulled).")
    created_at: datetime = Field(description="When it was registered (UTC).")
    files: dict[str, str] = Field(description="sha256 of every file in the folder but the manifest, by relative path.")
    gate: dict[str, float | None] | None = Field(None, description="The gate's measurements that approved it.")
    run_id: str | None = Field(None, description="The sleep run that fused it.")
    fusion: dict[str, Any] | None = Field(None, description="How it was fused: layers, quantized, seconds.")
    source: str | None = Field(None, description="Where a base model was pulled from.")
    forget_request: str | None = Field(None, description="The forget request a rebuild fused it for.")
    purged: dict[str, str] | None = Field(None, description="Set when a forget request erased its weights: "
                                          "request_id and at; the manifest stays so lineage explains the history.")

    @field_validator("files")
    @classmethod
    def _inside(cls, files: dict[str, str]) -> dict[str, str]:
        bad = [rel for rel in files if _outside(rel)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a relative path inside the version's folder")
        return files

    @field_validator("gate")
    @classmethod
    def _measured(cls, gate: dict[str, float | None] | None) -> dict[str, float | None] | None:
        if gate is not None:
            missing = [k for k in ("benchmark_ratio", "ppl_drift") if not isinstance(gate.get(k), float)]
            if missing:
                raise ValueError(f"the gate's {' and '.join(missing)} must be numbers")
        return gate

    @field_serializer("created_at")
    def _iso(self, value: datetime) -> str:
        return value.isoformat()  # as registered: 2026-12-01T03:00:00.123456+00:00


@dataclass(frozen=True)
class Version:
    """One registered model version."""

    name: str
    path: Path
    manifest: Manifest


def _outside(rel: object) -> bool:
    """True when a manifest's file name is not a plain relative path inside the folder (absolute, '..', NUL)."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        return True
    path = Path(rel)
    return path.is_absolute() or ".." in path.parts


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder` except the manifest, by relative path."""
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _manifest_json(mpath: Path) -> object:
    """A manifest file's JSON; IntegrityError naming the file when it cannot be read or parsed."""
    try:
        return json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{mpath}: cannot be read ({exc}); restore the folder or remove it") from None
    except ValueError as exc:
        raise IntegrityError(f"{mpath}: manifest is not valid JSON ({exc}); restore the folder or remove it") from None
    except RecursionError:
        raise IntegrityError(f"{mpath}: manifest is not valid JSON (nested too deeply); restore the folder or "
                             "remove it") from None


def verify_folder(folder: Path) -> dict:
    """Check every file against the manifest's sha256; return the manifest or raise IntegrityError."""
    mpath = folder / MANIFEST
    if not mpath.exists():
        raise IntegrityError(f"{folder}: no {MANIFEST}; refusing to use an unverifiable folder")
    manifest = _manifest_json(mpath)
    if isinstance(manifest, dict) and isinstance(manifest.get("purged"), dict):
        raise IntegrityError(purged_message(folder.name, manifest["purged"]))
    expected = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(expected, dict):
        raise IntegrityError(f"{mpath}: the manifest lists no files and their sha256; refusing to use the folder")
    problems = []
    for rel, digest in expected.items():
        p = folder / rel if not _outside(rel) else None
        if p is None:
            problems.append(f"{rel!r} is not a relative path inside the folder")
        elif not p.is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(p) != digest:
            problems.append(f"{rel} sha256 differs from the manifest (tampered or truncated)")
    extra = sorted(set(file_hashes(folder)) - set(expected)) if not problems else []
    problems += [f"{rel} is not in the manifest" for rel in extra]
    if problems:
        raise IntegrityError(f"{folder}: " + "; ".join(problems))
    return manifest


def read_manifest(folder: Path) -> Manifest:
    """The version folder's manifest, validated (not its files); IntegrityError naming the file when it is bad."""
    mpath = folder / MANIFEST
    data = _manifest_json(mpath)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}" for e in exc.errors())
        raise IntegrityError(f"{mpath}: not a valid model-version manifest ({problems})") from None
    if manifest.version != folder.name:
        raise IntegrityError(f"{mpath}: names version {manifest.version!r}, but its folder is {folder.name!r}")
    return manifest


def versions(home: Home) -> list[Version]:
    """Every registered version, oldest first (manifests validated, files not verified)."""
    if not home.models.exists():
        return []
    if not home.models.is_dir():
        raise IntegrityError(f"{home.models}: is a file, not the folder of model versions; move it away")
    return [Version(p.name, p, read_manifest(p)) for p in sorted(home.models.iterdir())
            if p.is_dir() and _VERSION.match(p.name) and (p / MANIFEST).exists()]


def next_version_name(home: Home) -> str:
    """The next free vNNNN; IntegrityError when a folder of that name exists without a manifest."""
    existing = [int(v.name[1:]) for v in versions(home)]
    name = f"v{(max(existing) + 1) if existing else 0:04d}"
    if (home.models / name).exists():  # not registered (no manifest): slowwave never leaves one behind
        raise IntegrityError(f"{home.models / name}: exists but has no {MANIFEST}, so it is not a registered version "
                             f"and the next version cannot take its name; move it out of {home.models} or remove it")
    return name


def register(home: Home, source: Path, *, run_id: str, parent: str | None, adapter_id: str | None,
             base: str, extra: dict | None = None, link: bool = False) -> Version:
    """Copy (or hard-link) a model folder into a new immutable version with a manifest."""
    name = next_version_name(home)
    final = home.models / name
    with atomic_dir(final) as tmp:
        for p in sorted(source.rglob("*")):
            if not p.is_file() or p.name == MANIFEST:
                continue
            dest = tmp / p.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if link:
                try:
                    os.link(p, dest)
                    continue
                except OSError:
                    pass  # another filesystem: fall through to a copy
            shutil.copy2(p, dest)
        manifest = Manifest(version=name, parent=parent, adapter_id=adapter_id, base=base, created_at=utcnow(),
                            files=file_hashes(tmp), **(extra or {}))
        # Only the keys given are written: a base model's manifest has no gate, run_id or fusion.
        (tmp / MANIFEST).write_text(json.dumps(manifest.model_dump(mode="json", exclude_unset=True), indent=2,
                                               sort_keys=True))
    version = Version(name, final, manifest)
    record_version(home, version, run_id)
    return version


def record_version(home: Home, version: Version, run_id: str) -> None:
    """The version's `model_versions` row (once: a resumed run that finds its folder registered calls it again)."""
    have = read_table(home, "model_versions", columns=["version"])["version"].to_pylist()
    if version.name in have:
        return
    m = version.manifest
    write_table(home, "model_versions", run_id, pa.Table.from_pylist([{
        "version": version.name, "parent": m.parent, "adapter_id": m.adapter_id, "base": m.base,
        "created_at": m.created_at, "manifest_sha256": manifest_sha256(version),
        "metrics_json": json.dumps(m.gate, default=str),
    }]))


def get(home: Home, name: str) -> Version:
    """A version by name, or ModelError listing the known ones."""
    path = home.models / name
    if not _VERSION.match(name) or not (path / MANIFEST).exists():
        known = ", ".join(v.name for v in versions(home)) or "none"
        raise ModelError(f"no model version {name!r} in {home.models}; known: {known}")
    return Version(name, path, read_manifest(path))


def current_name(home: Home) -> str | None:
    """The version `current` points at, or None before the first model exists."""
    p = home.models / CURRENT
    if not p.exists():
        return None
    try:
        return p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{p}: cannot be read ({exc}); replace it with a file holding the current "
                             f"version's name (e.g. `echo v0000 > {p}`)") from None


def purged_message(name: str, purged: dict) -> str:
    """Why a purged version or adapter cannot be used, in one line."""
    return (f"{name} was purged by forget request {purged.get('request_id')} at {purged.get('at', '?')[:19]}: its "
            "weights were erased because it learned what was forgotten (its manifest stays for lineage)")


def set_current(home: Home, name: str, *, run_id: str, action: str, reason: str) -> None:
    """Switch `current` atomically (readers see the old or the new name, never a partial one); never to a purged
    version."""
    version = get(home, name)
    if version.manifest.purged:
        raise ModelError(purged_message(name, version.manifest.purged) + "; choose another version")
    previous = current_name(home)
    write_text_atomic(home.models / CURRENT, name + "\n")
    write_table(home, "model_events", run_id, pa.Table.from_pylist([{
        "at": utcnow(), "action": action, "from_version": previous, "to_version": name, "reason": reason,
    }]))


def manifest_sha256(version: Version) -> str:
    """sha256 of a version's manifest file."""
    return sha256_bytes((version.path / MANIFEST).read_bytes())
