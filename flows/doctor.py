"""`slowwave doctor`: what this machine and home look like, in a few lines a person can act on."""

from __future__ import annotations

import platform
import sys

from storage.home import Home


def _size(path) -> str:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if total >= scale:
            return f"{total / scale:.1f} {unit}"
    return f"{total} B"


def doctor_lines(home: Home) -> list[str]:
    """Platform, MLX backend, BLAS and its measured speed, model, warehouse, Prefect API."""
    from tasks.model.blas import ensure_fast_blas, measure_gflops

    blas = ensure_fast_blas()  # before MLX is imported anywhere
    import mlx.core as mx

    from flows.prefect_env import configure
    from storage import registry
    from tasks.model.pull import cache_dir

    lines = [
        f"platform:   {platform.system()} {platform.machine()}, Python {sys.version.split()[0]}",
        f"mlx:        {mx.__version__}, default device {mx.default_device()}, "
        f"metal {'yes' if mx.metal.is_available() else 'no'}, "
        f"cuda {'yes' if hasattr(mx, 'cuda') and mx.cuda.is_available() else 'no'}",
    ]
    gflops = measure_gflops()
    lines.append(f"blas:       {blas.name}{f' ({blas.path})' if blas.path else ''}, "
                 f"float32 matmul {gflops:.0f} GFLOP/s")
    if blas.hint:
        lines.append(f"hint:       {blas.hint}")
    current = registry.current_name(home)
    versions = registry.versions(home)
    lines.append(f"model:      current {current or 'none (run `slowwave model pull`)'}, "
                 f"{len(versions)} version(s), cache {cache_dir()}")
    lines.append(f"warehouse:  {home.warehouse} ({_size(home.warehouse)}), home {home.root} ({_size(home.root)})")
    from flows.pressure import pressure_line

    lines.append(f"prefect:    {configure(home)}")
    lines.append(f"pressure:   {pressure_line(home).removeprefix('sleep pressure: ')}")
    return lines
