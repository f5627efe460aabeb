"""Files shipped with slowwave under tasks/data/."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def data_path(name: str) -> Path:
    """Path of a shipped data file, or FileNotFoundError naming the folder."""
    path = DATA_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: shipped data file missing (reinstall slowwave)")
    return path
