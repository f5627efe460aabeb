"""Atomic file writes: temp file in the same folder, fsync, rename, fsync the folder.

Every temp name carries its writer's pid, so the parts a killed writer left behind can be told from a live
writer's and removed (`clean_stale_temp`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; on success fsync and rename it into place.

    The temp name (`.<name>.<pid>.<random>.tmp`) ends in `.tmp`, so readers globbing `*.parquet` never see it.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(final: Path, data: bytes) -> None:
    """Write bytes to `final` atomically."""
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(final: Path, text: str) -> None:
    """Write UTF-8 text to `final` atomically."""
    write_bytes_atomic(final, text.encode("utf-8"))


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success fsync its files and rename it into place.

    A crash leaves only a `.tmp-<name>-<pid>-<random>` folder, never a half-written `final`.
    """
    if final.exists():
        raise FileExistsError(f"{final} already exists; versioned folders are immutable")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        os.rename(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def copy_file_atomic(source: Path, final: Path) -> None:
    """Copy `source` to `final` atomically (a reader sees the old file or the whole new one)."""
    with atomic_path(final) as tmp:
        shutil.copyfile(source, tmp)


# The temp names above, and the lock's holder file (storage/lock.py): group 1 is the writer's pid.
_TEMP_NAMES = (re.compile(r"^\..+\.(\d+)\.[a-z0-9_]+\.tmp$"), re.compile(r"^\.tmp-.+-(\d+)-[a-z0-9_]+$"),
               re.compile(r"^\.lock\.holder\.(\d+)\.tmp$"))
#: The home's folders that atomic writes go to (its Prefect folder is Prefect's own).
HOME_FOLDERS = ("warehouse", "models", "adapters", "runs")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a pid this system cannot have): leave its files alone
    return True


def stale_temp(root: Path) -> list[Path]:
    """Temp files and folders under a home whose writer (the pid in the name) is no longer running."""
    found = []
    tops = [root / name for name in HOME_FOLDERS if (root / name).is_dir()]
    for top in [root, *tops]:
        walk = os.walk(top) if top != root else [(str(root), [], [e.name for e in os.scandir(root)])]
        for folder, dirs, files in walk:
            for name in sorted(files) + sorted(dirs):
                match = next((m for m in (r.match(name) for r in _TEMP_NAMES) if m), None)
                if match and not _alive(int(match.group(1))):
                    found.append(Path(folder) / name)
            dirs[:] = [d for d in dirs if Path(folder) / d not in found]  # never descend into a stale part
    return found


def clean_stale_temp(root: Path) -> list[Path]:
    """Remove the temp parts writers that were killed left under the home; returns what was removed.

    Call it holding the home's lock: a part whose pid is dead has no writer, and the lock keeps any new
    writer of this home from starting meanwhile."""
    if not root.is_dir():
        return []
    removed = []
    for path in stale_temp(root):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
