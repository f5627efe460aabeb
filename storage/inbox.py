"""Finding and reading session files given on the command line or dropped in an inbox."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storage.errors import InputError
from storage.ids import sha256_bytes


class UnreadableFile(InputError):
    """A session file that exists but cannot be read (permissions, I/O error, removed meanwhile)."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{display_path(path)}: {reason}")


def display_path(path: Path) -> str:
    """A path as text that is always valid UTF-8: undecodable bytes of a file name are shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class SessionFile:
    """One input file's bytes and identity."""

    path: Path
    data: bytes
    sha256: str


def list_session_files(paths: list[Path], pattern: str = "*.jsonl") -> list[Path]:
    """Expand files and folders (recursively, by `pattern`) into a sorted, de-duplicated file list."""
    found: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            found.extend(sorted(x for x in p.rglob(pattern) if x.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"{display_path(p)}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for f in found:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(r)
    return unique


def read_session_file(path: Path) -> SessionFile:
    """Read a whole file as bytes (bad UTF-8 is judged per line later) with its sha256."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(path, f"cannot read ({exc.strerror or type(exc).__name__})") from None
    return SessionFile(path=path, data=data, sha256=sha256_bytes(data))
