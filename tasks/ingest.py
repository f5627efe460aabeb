"""Stage 0: parse session logs into messages, pair each turn into an exchange, quarantine the rest."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from storage.ids import exchange_id, message_id
from storage.schemas import SCHEMAS

ROLES = ("user", "assistant")
_FIELDS = (("timestamp", str), ("session_id", str), ("turn", int), ("role", str), ("content", str))


class IngestConfig(BaseModel):
    """How session logs are read."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_message_bytes: int = Field(65536, gt=0, description="A line longer than this many bytes is quarantined as too-large.")
    pattern: str = Field("*.jsonl", description="Glob for session files inside a folder given to ingest.")
    inbox: list[str] = Field(default_factory=list, description="Folders the sleep flow ingests from, besides "
                             "$SLOWWAVE_HOME/inbox (e.g. the assistant's conversation log folder).")


def _without_run_id(table: str) -> pa.Schema:
    schema = SCHEMAS[table]
    return schema.remove(schema.get_field_index("run_id"))


@dataclass
class ParsedFile:
    """Messages and quarantined lines of one session file (column lists, ready for Arrow)."""

    messages: dict[str, list] = field(default_factory=lambda: {n: [] for n in _without_run_id("messages").names})
    quarantine: dict[str, list] = field(default_factory=lambda: {n: [] for n in _without_run_id("quarantine").names})
    lines: int = 0

    def reject(self, source: str, sha: str, line_no: int, reason: str, detail: str, raw: bytes) -> None:
        q = self.quarantine
        q["source_file"].append(source)
        q["file_sha256"].append(sha)
        q["line_no"].append(line_no)
        q["reason"].append(reason)
        q["detail"].append(detail)
        q["raw"].append(raw)


def _parse_timestamp(value: str) -> datetime:
    ts = datetime.fromisoformat(value)
    # A naive timestamp is read as UTC: the reference client writes UTC.
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _check(obj: object) -> tuple[str, str] | None:
    """Return (reason, detail) when a decoded line is not a valid message."""
    if not isinstance(obj, dict):
        return "not-an-object", f"expected a JSON object, got {type(obj).__name__}"
    for name, typ in _FIELDS:
        if name not in obj:
            return "missing-field", f"field '{name}' is missing"
        value = obj[name]
        if not isinstance(value, typ) or isinstance(value, bool):
            return "wrong-type", f"field '{name}' must be {typ.__name__}, got {type(value).__name__}"
    if obj["role"] not in ROLES:
        return "unknown-role", f"role {obj['role']!r} is not one of {', '.join(ROLES)}"
    if obj["turn"] < 0:
        return "wrong-type", f"field 'turn' must be >= 0, got {obj['turn']}"
    if not obj["session_id"].strip():
        return "wrong-type", "field 'session_id' is empty"
    return None


def parse_session_file(data: bytes, source_file: str, file_sha256: str, cfg: IngestConfig) -> ParsedFile:
    """Parse one JSONL session file; every line becomes a message or a quarantine row."""
    out = ParsedFile()
    if not data.strip():
        out.reject(source_file, file_sha256, 0, "empty-file", "the file holds no messages", data[:1024])
        return out
    m = out.messages
    limit = cfg.max_message_bytes
    loads = json.loads
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue  # blank lines (and the final newline) carry nothing
        out.lines += 1
        if len(raw) > limit:
            out.reject(source_file, file_sha256, line_no, "too-large",
                       f"line is {len(raw)} bytes, limit {limit} (ingest.max_message_bytes)", raw)
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.reject(source_file, file_sha256, line_no, "invalid-utf8", f"byte {exc.start}: {exc.reason}", raw)
            continue
        try:
            obj = loads(text)
        except ValueError as exc:
            out.reject(source_file, file_sha256, line_no, "invalid-json", str(exc), raw)
            continue
        problem = _check(obj)
        if problem is None:
            try:
                ts = _parse_timestamp(obj["timestamp"])
            except ValueError:
                problem = ("bad-timestamp", f"timestamp {obj['timestamp'][:40]!r} is not ISO-8601")
        if problem is not None:
            out.reject(source_file, file_sha256, line_no, problem[0], problem[1], raw)
            continue
        m["message_id"].append(message_id(obj["session_id"], obj["turn"], obj["role"], obj["timestamp"], obj["content"]))
        m["source_file"].append(source_file)
        m["file_sha256"].append(file_sha256)
        m["line_no"].append(line_no)
        m["session_id"].append(obj["session_id"])
        m["turn"].append(obj["turn"])
        m["role"].append(obj["role"])
        m["timestamp"].append(ts)
        m["content"].append(obj["content"])
    return out


def messages_table(parsed: ParsedFile) -> pa.Table:
    """The parsed messages as an Arrow table (messages schema without run_id)."""
    return pa.Table.from_pydict(parsed.messages, schema=_without_run_id("messages"))


def quarantine_table(rows: dict[str, list]) -> pa.Table:
    """Quarantine rows as an Arrow table (quarantine schema without run_id)."""
    return pa.Table.from_pydict(rows, schema=_without_run_id("quarantine"))


def pair_exchanges(parsed: ParsedFile) -> tuple[pa.Table, dict[str, list]]:
    """Pair the user and assistant message of each (session, turn); unpaired lines go to quarantine."""
    m = parsed.messages
    slots: dict[tuple[str, int], dict[str, int]] = {}
    q: dict[str, list] = {n: [] for n in parsed.quarantine}
    bad = ParsedFile(quarantine=q)
    for i, (sid, turn, role) in enumerate(zip(m["session_id"], m["turn"], m["role"])):
        slot = slots.setdefault((sid, turn), {})
        if role in slot:
            bad.reject(m["source_file"][i], m["file_sha256"][i], m["line_no"][i], "duplicate-turn",
                       f"a second {role} message for session {sid!r} turn {turn}", m["content"][i].encode())
            continue
        slot[role] = i
    ex: dict[str, list] = {n: [] for n in _without_run_id("exchanges").names}
    for (sid, turn), slot in slots.items():
        if len(slot) < 2:
            role, i = next(iter(slot.items()))
            reason, detail = ("no-answer", f"user message of turn {turn} has no assistant reply") if role == "user" \
                else ("no-question", f"assistant message of turn {turn} has no user message")
            bad.reject(m["source_file"][i], m["file_sha256"][i], m["line_no"][i], reason, detail,
                       m["content"][i].encode())
            continue
        u, a = slot["user"], slot["assistant"]
        ex["exchange_id"].append(exchange_id(sid, turn, m["content"][u], m["content"][a]))
        ex["session_id"].append(sid)
        ex["turn"].append(turn)
        ex["timestamp"].append(m["timestamp"][u])
        ex["user_text"].append(m["content"][u])
        ex["assistant_text"].append(m["content"][a])
        ex["user_message_id"].append(m["message_id"][u])
        ex["assistant_message_id"].append(m["message_id"][a])
        ex["source_file"].append(m["source_file"][u])
        ex["file_sha256"].append(m["file_sha256"][u])
        ex["user_line"].append(m["line_no"][u])
        ex["assistant_line"].append(m["line_no"][a])
    return pa.Table.from_pydict(ex, schema=_without_run_id("exchanges")), q


def reason_counts(quarantine: pa.Table) -> Counter:
    """How many quarantined rows per reason."""
    return Counter(quarantine.column("reason").to_pylist())
