"""One writer per home: an OS file lock held while ingest, sleep or rollback changes the home.

`fcntl.flock` on `<home>/.lock`: the kernel drops it when the holder exits, killed or not, so a lock is
never left behind. The holder's pid, command and start time are written beside it (`.lock.holder`) for the
message a second writer gets. Re-entrant within a process (a sleep that ingests its inbox holds it once).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from storage.errors import SlowwaveError

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock.holder"
_held: dict[str, int] = {}  # lock path -> depth, in this process
_guard = threading.Lock()


class HomeBusy(SlowwaveError):
    """Another process is changing this home."""


def holder(root: Path) -> dict | None:
    """Who holds (or last held) the home's lock: {pid, command, since}, or None."""
    try:
        return json.loads((root / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def home_lock(root: Path, command: str):
    """Hold the home's write lock for the block; HomeBusy at once (naming the holder) if another process has it."""
    root.mkdir(parents=True, exist_ok=True)
    path = str((root / LOCK_FILE).resolve())
    with _guard:
        if path in _held:
            _held[path] += 1
            fd = None
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                who = holder(root) or {}
                raise HomeBusy(f"{root} is in use by pid {who.get('pid', '?')} (`{who.get('command', '?')}`, since "
                               f"{who.get('since', '?')}); wait for it to finish or stop it, then run "
                               f"`{command}` again") from None
            _held[path] = 1
            info = {"pid": os.getpid(), "command": command, "since": datetime.now(timezone.utc).isoformat()[:19]}
            tmp = root / f"{HOLDER_FILE}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(info))
            os.replace(tmp, root / HOLDER_FILE)
    try:
        yield
    finally:
        with _guard:
            _held[path] -= 1
            if _held[path] == 0:
                del _held[path]
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


def command_line() -> str:
    """This process's command, for the holder message."""
    return " ".join(["slowwave" if a.endswith("slowwave") else a for a in sys.argv[:4]]) or "python"
