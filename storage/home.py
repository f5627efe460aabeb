"""The layout of $SLOWWAVE_HOME: where every kind of file lives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storage.errors import InputError

DEFAULT_HOME = Path("~/.slowwave")


@dataclass(frozen=True)
class Home:
    """Paths under one slowwave home directory."""

    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike | None = None) -> "Home":
        """The home from --home, else $SLOWWAVE_HOME, else ~/.slowwave; InputError when that is not a folder."""
        raw = explicit or os.environ.get("SLOWWAVE_HOME") or DEFAULT_HOME
        root = Path(raw).expanduser().resolve()
        given = "--home" if explicit else "$SLOWWAVE_HOME" if os.environ.get("SLOWWAVE_HOME") else "the default home"
        if root.exists() and not root.is_dir():
            raise InputError(f"{root}: {given} names a file, not a folder; point it at a folder (created if missing)")
        blocker = next((p for p in root.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise InputError(f"{root}: {given} lies under {blocker}, which is a file, not a folder; point it at a "
                             "folder (created if missing)")
        return cls(root)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def runs(self) -> Path:
        """Per-run files that are not tables: loss curves, plots, reports."""
        return self.root / "runs"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def catalog_file(self) -> Path:
        return self.root / "catalog.duckdb"

    def table_dir(self, table: str) -> Path:
        return self.warehouse / table

    def ensure(self) -> "Home":
        """Create the top-level folders (idempotent) and return self."""
        for p in (self.warehouse, self.models, self.adapters, self.runs):
            if p.exists() and not p.is_dir():
                raise InputError(f"{p}: is a file, not one of the home's folders; move it away")
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file in the way, no permission, a read-only or full disk
                raise InputError(f"{p}: cannot create the home's folder ({exc.strerror or exc}); "
                                 "fix it or choose another home with --home") from None
        return self


def cache_root() -> Path:
    """Where downloads, conversions, the patched BLAS and generated data are kept across homes: $SLOWWAVE_CACHE,
    else $XDG_CACHE_HOME/slowwave, else ~/.cache/slowwave. Importing it loads nothing heavy (the BLAS is found
    before MLX is imported)."""
    raw = os.environ.get("SLOWWAVE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "slowwave"
    return Path(raw).expanduser()
