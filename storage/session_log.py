"""The wake side's conversation log: one session file in the inbox, in the format ingest reads.

Each message is one JSON line `{"timestamp", "session_id", "turn", "role", "content"}`, written with one
`write`, flushed and fsynced before `append` returns, so a crash loses at most the line being written. A
line a crash left without its newline is closed off before the next one is written: it stays a line of its
own, which ingest quarantines (`invalid-json`) while every whole line around it is read.
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

from storage.atomic import fsync_dir
from storage.errors import InputError
from storage.home import Home

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLES = ("user", "assistant")


def inbox_dir(home: Home) -> Path:
    """The folder the sleep ingests by itself: $SLOWWAVE_HOME/inbox."""
    return home.root / "inbox"


def check_session_id(session_id: str) -> str:
    """The session id when it can name a file (letters, digits, `_`, `.`, `-`; 1-64, no leading dot); InputError."""
    if not isinstance(session_id, str) or not SESSION_ID.match(session_id):
        shown = repr(session_id)[:80]
        raise InputError(f"session id {shown} is not usable: use 1-64 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit")
    return session_id


def check_text(text: str, what: str) -> str:
    """`text` when it can be written as UTF-8; InputError naming a lone surrogate (valid JSON, not text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} holds a lone surrogate \\u{ord(text[exc.start]):04x} at character {exc.start}, "
                         "which is not Unicode text") from None
    return text


def new_session_id(now: datetime | None = None) -> str:
    """A session id from the local time, like the reference assistant's (20261120_100000)."""
    return (now or datetime.now()).strftime("%Y%m%d_%H%M%S")


def _next_turn(path: Path) -> int:
    """One past the highest turn of the file's readable lines (0 for a new or empty file)."""
    highest = -1
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    for raw in data.split(b"\n"):
        try:
            turn = json.loads(raw).get("turn")
        except (ValueError, AttributeError):
            continue  # a partial or foreign line: ingest quarantines it; it holds no turn to continue from
        if isinstance(turn, int) and not isinstance(turn, bool):
            highest = max(highest, turn)
    return highest + 1


class SessionLog:
    """Appends one session's messages to `inbox/session_<id>.jsonl` (thread-safe; turns continue an existing file)."""

    def __init__(self, inbox: Path, session_id: str):
        self.session_id = check_session_id(session_id)
        self.path = inbox / f"session_{session_id}.jsonl"
        self._lock = threading.Lock()
        self._next = _next_turn(self.path)
        self._checked_end = False  # whether the file's last byte was seen to be a newline (after a crash it may not)

    def next_turn(self) -> int:
        """Reserve the next turn number (the user's message and the answer share it)."""
        with self._lock:
            turn, self._next = self._next, self._next + 1
            return turn

    def append(self, turn: int, role: str, content: str, timestamp: datetime | None = None) -> None:
        """Write one message as one line, flushed and fsynced before returning."""
        if role not in ROLES:
            raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
        check_text(content, f"the {role}'s message")
        stamp = (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat()
        line = json.dumps({"timestamp": stamp, "session_id": self.session_id, "turn": turn, "role": role,
                           "content": content}, ensure_ascii=False)
        data = line.encode("utf-8") + b"\n"
        with self._lock:
            created = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                if not self._checked_end and f.tell() > 0 and not _ends_with_newline(self.path):
                    data = b"\n" + data  # a crash cut the last line short: keep it a line of its own
                self._checked_end = True
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if created:  # the file's name must survive a crash too
                fsync_dir(self.path.parent)

    def forget(self) -> bool:
        """Delete the session's file; True when there was one."""
        with self._lock:
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
            self._checked_end = False
            fsync_dir(self.path.parent)
            return True


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


class SessionLogs:
    """One SessionLog per session id, shared by every request of a process."""

    def __init__(self, inbox: Path):
        self.inbox = inbox
        self._logs: dict[str, SessionLog] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str) -> SessionLog:
        """The log of `session_id` (InputError when the id cannot name a file)."""
        with self._lock:
            if session_id not in self._logs:
                self._logs[session_id] = SessionLog(self.inbox, session_id)
            return self._logs[session_id]
