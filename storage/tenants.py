"""Tenants: many people's memories under one root, each in a home of its own.

`$SLOWWAVE_ROOT/tenants/NAME/` is the home of tenant NAME (`--tenant NAME` or `$SLOWWAVE_TENANT`). Each holds
its own warehouse, models, adapters, inbox, config.toml and run lock, exactly as a single home does; what
depends only on the shipped base model (its conversion, the teacher targets, the gate's measurements) stays in
the shared read-only cache (`~/.cache/slowwave`), and a tenant's v0000 is hard-linked from it, not copied.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from storage.errors import InputError
from storage.home import Home

DEFAULT_ROOT = "~/.slowwave"
TENANTS = "tenants"
# A name is one path component people can type: lower-case letters, digits, '-' and '_', at most 64.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def check_name(name: str) -> str:
    """The name when it is a valid tenant name; InputError naming what is wrong otherwise."""
    if not isinstance(name, str) or not name:
        raise InputError("tenant name is empty: use lower-case letters, digits, '-' and '_' (at most 64)")
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name:
        raise InputError(f"tenant {name!r}: a tenant name is one folder name, without '/', '\\' or '..'")
    if not NAME.fullmatch(name):
        raise InputError(f"tenant {name!r}: use lower-case letters, digits, '-' and '_' (starting with a letter "
                         "or digit, at most 64)")
    return name


def root_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder that holds the tenants: explicit, else $SLOWWAVE_ROOT, else ~/.slowwave."""
    raw = explicit or os.environ.get("SLOWWAVE_ROOT") or DEFAULT_ROOT
    root = Path(raw).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: $SLOWWAVE_ROOT names a file, not a folder")
    return root


def tenant_home(name: str, root: str | os.PathLike | None = None) -> Home:
    """The home of tenant `name` under the root (not created)."""
    return Home(root_dir(root) / TENANTS / check_name(name))


def tenant_of(home: Home) -> str | None:
    """The tenant whose home this is, or None for a home outside any root's tenants folder."""
    parent = home.root.parent
    return home.root.name if parent.name == TENANTS and NAME.fullmatch(home.root.name) else None


def list_tenants(root: str | os.PathLike | None = None) -> list[str]:
    """The tenants under the root, sorted (folders with a valid name; anything else there is left alone)."""
    folder = root_dir(root) / TENANTS
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and NAME.fullmatch(p.name))
