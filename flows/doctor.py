"""`slowwave doctor`: what this machine and home look like, in a few lines a person can act on."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING

from storage.errors import IntegrityError, SlowwaveError
from storage.home import Home

if TYPE_CHECKING:
    from storage.registry import Version


def _size(path) -> str:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if total >= scale:
            return f"{total / scale:.1f} {unit}"
    return f"{total} B"


def model_problems(home: Home, versions: list[Version], *, hash_all: bool) -> list[str]:
    """One line per damaged version and for a `current` that names no usable version; empty when all is well.

    The current version's files are always checked against their sha256; the others' only when `hash_all`
    (otherwise for missing files), since hashing every version's weights takes a while."""
    from storage import registry  # pyarrow and numpy: only after doctor_lines loaded the fast BLAS

    current = registry.current_name(home)
    known = {v.name: v for v in versions}
    out = []
    if current is None and versions:
        fix = ("`slowwave model pull` makes it current" if all(v.manifest.parent is None for v in versions)
               else f"point it at one (e.g. `echo {versions[-1].name} > {home.models / registry.CURRENT}`)")
        out.append(f"current: {home.models / registry.CURRENT} is missing, but {len(versions)} version(s) are "
                   f"registered (newest {versions[-1].name}); {fix}")
    if current is not None and current not in known:
        out.append(f"current: {home.models / registry.CURRENT} names {current!r}, which is not a registered version "
                   f"(known: {', '.join(known) or 'none'}); point it at one with `slowwave rollback VERSION`")
    for v in versions:
        if v.manifest.purged:  # erased on purpose by a forget request; `current` never points at one
            if v.name == current:
                out.append(f"current: {registry.purged_message(v.name, v.manifest.purged)}; switch with "
                           "`slowwave rollback VERSION`")
            continue
        if hash_all or v.name == current:
            try:
                registry.verify_folder(v.path)
            except IntegrityError as exc:
                fix = (f"switch with `slowwave rollback {v.manifest.parent}`" if v.name == current and v.manifest.parent
                       else "restore it from a backup")
                out.append(f"{'current ' if v.name == current else ''}{v.name}: {exc}; {fix}")
        else:
            missing = sorted(rel for rel in v.manifest.files if not (v.path / rel).is_file())
            if missing:
                out.append(f"{v.name}: {len(missing)} file(s) of its manifest are missing ({', '.join(missing[:3])})")
    return out


def doctor_lines(home: Home) -> list[str]:
    """Platform, MLX backend, BLAS and its measured speed, model, warehouse, Prefect API."""
    from tasks.model.blas import ensure_fast_blas, measure_gflops

    blas = ensure_fast_blas()  # before MLX is imported anywhere
    import mlx.core as mx

    from flows.prefect_env import configure
    from storage import registry
    from storage.home import cache_root

    lines = [
        f"platform:   {platform.system()} {platform.machine()}, Python {sys.version.split()[0]}",
        f"mlx:        {mx.__version__}, default device {mx.default_device()}, "
        f"metal {'yes' if mx.metal.is_available() else 'no'}, "
        f"cuda {'yes' if hasattr(mx, 'cuda') and mx.cuda.is_available() else 'no'}",
    ]
    from flows.config import load_settings
    from tasks.model.threads import apply_threads

    try:
        setting = load_settings(home.config_file).model.threads
    except SlowwaveError as exc:  # doctor still reports the rest; the bad setting is its own line
        setting = 0
        lines.append(f"problem:    {exc}")
    choice = apply_threads(setting)  # what a heavy stage would choose now
    gflops = measure_gflops()
    lines.append(f"blas:       {blas.name}{f' ({blas.path})' if blas.path else ''}, "
                 f"float32 matmul {gflops:.0f} GFLOP/s with {choice.threads} thread(s)")
    lines.append(f"threads:    {choice.threads} of {choice.cores} core(s) for training and answering "
                 f"({choice.reason}; set [model] threads to pin)")
    if blas.hint:
        lines.append(f"hint:       {blas.hint}")
    current = None
    try:
        current = registry.current_name(home)
        versions = registry.versions(home)
        problems = model_problems(home, versions, hash_all=True)
    except SlowwaveError as exc:  # a manifest that cannot be read: say which, and go on with the rest
        versions, problems = [], [str(exc)]
    lines.append(f"model:      current {current or 'none (run `slowwave model pull`)'}, "
                 f"{len(versions)} version(s), cache {cache_root()}")
    lines += [f"problem:    {p}" for p in problems]
    lines.append(f"warehouse:  {home.warehouse} ({_size(home.warehouse)}), home {home.root} ({_size(home.root)})")
    from flows.pressure import pressure_line

    lines.append(f"prefect:    {configure(home)}")
    lines.append(f"pressure:   {pressure_line(home).removeprefix('sleep pressure: ')}")
    return lines
