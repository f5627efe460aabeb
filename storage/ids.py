"""Content-hash ids: the same input always gives the same id."""

from __future__ import annotations

import hashlib
from hashlib import sha256
import time
import uuid
from pathlib import Path

ID_HEX = 16  # 64 bits: collision odds at 10^7 rows are ~10^-6.


def content_id(prefix: str, *parts: object) -> str:
    """Return `prefix_` + a short sha256 of the parts, each length-prefixed so none can run into the next."""
    payload = "\x1f".join([f"{len(s)}:{s}" for s in map(str, parts)])
    return f"{prefix}_{sha256(payload.encode('utf-8', 'surrogatepass')).hexdigest()[:ID_HEX]}"


def message_id(session_id: str, turn: int, role: str, timestamp: str, content: str) -> str:
    """Id of one logged message, from its content: a log file that grows keeps its old ids."""
    # Spelled out (same encoding as content_id): this runs once per ingested line.
    payload = (f"{len(session_id)}:{session_id}\x1f{len(str(turn))}:{turn}\x1f{len(role)}:{role}"
               f"\x1f{len(timestamp)}:{timestamp}\x1f{len(content)}:{content}")
    return "msg_" + sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:ID_HEX]


def exchange_id(session_id: str, turn: int, user_text: str, assistant_text: str) -> str:
    """Id of an exchange = hash(session_id, turn, user text, assistant text)."""
    payload = (f"{len(session_id)}:{session_id}\x1f{len(str(turn))}:{turn}"
               f"\x1f{len(user_text)}:{user_text}\x1f{len(assistant_text)}:{assistant_text}")
    return "ex_" + sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:ID_HEX]


def pair_id(exchange_id_: str, method: str, question: str, answer: str) -> str:
    """Id of a question-answer pair = hash(exchange_id, method, question, answer)."""
    return content_id("pr", exchange_id_, method, question, answer)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def new_run_id(now: float | None = None) -> str:
    """A sortable run id: UTC timestamp plus a random suffix, e.g. r20261123T030000-1a2b3c."""
    t = time.gmtime(now if now is not None else time.time())
    return time.strftime("r%Y%m%dT%H%M%S", t) + "-" + uuid.uuid4().hex[:6]
