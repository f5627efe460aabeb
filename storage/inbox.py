"""Finding and reading session files given on the command line or dropped in an inbox."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.errors import InputError
from storage.ids import sha256_bytes


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
            raise InputError(f"{p}: no such file or folder")
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
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return SessionFile(path=path, data=data, sha256=sha256_bytes(data))
