"""Stage 0: parse session logs into messages, pair each turn into an exchange, quarantine the rest."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from pydantic import BaseModel, ConfigDict, Field

from storage.ids import exchange_id, message_id
from storage.schemas import without_run_id

ROLES = ("user", "assistant")
TURN_MAX = 2**63 - 1  # turns are int64 in every table
_FIELDS = (("timestamp", str), ("session_id", str), ("turn", int), ("role", str), ("content", str))
_RAW_SCHEMA = pa.schema([("timestamp", pa.string()), ("session_id", pa.string()), ("turn", pa.int64()),
                         ("role", pa.string()), ("content", pa.string())])
_TS = pa.timestamp("us", tz="UTC")
# The instants a Python datetime can hold, as the int64 microseconds Arrow stores.
_TS_MIN = pa.scalar(datetime.min.replace(tzinfo=timezone.utc), _TS).value
_TS_MAX = pa.scalar(datetime.max.replace(tzinfo=timezone.utc), _TS).value
_PARSE = pajson.ParseOptions(explicit_schema=_RAW_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False)


class IngestConfig(BaseModel):
    """How session logs are read."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_message_bytes: int = Field(65536, gt=0, description="A line longer than this many bytes is quarantined as too-large.")
    pattern: str = Field("*.jsonl", description="Glob for session files inside a folder given to ingest.")
    inbox: list[str] = Field(default_factory=list, description="Folders the sleep flow ingests from, besides "
                             "$SLOWWAVE_HOME/inbox (e.g. the assistant's conversation log folder).")


MESSAGES = without_run_id("messages")
QUARANTINE = without_run_id("quarantine")
EXCHANGES = without_run_id("exchanges")


@dataclass
class ParsedFile:
    """Messages and quarantined lines of one or more session files."""

    messages: pa.Table
    quarantine: pa.Table
    lines: int


def quarantine_rows(rows: list[tuple[str, str, int, str, str, bytes]]) -> pa.Table:
    """Quarantine rows (source_file, file_sha256, line_no, reason, detail, raw) as a table of the quarantine schema."""
    cols = list(zip(*rows)) if rows else [[] for _ in QUARANTINE.names]
    return pa.Table.from_arrays([pa.array(list(c), f.type) for c, f in zip(cols, QUARANTINE)], schema=QUARANTINE)


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
    for name, typ in _FIELDS:
        if typ is str:
            try:
                obj[name].encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800": valid JSON, not text
                return "invalid-unicode", (f"field '{name}' holds a lone surrogate \\u{ord(obj[name][exc.start]):04x} "
                                           f"at character {exc.start}, which is not Unicode text")
    if obj["role"] not in ROLES:
        return "unknown-role", f"role {obj['role'][:40]!r} is not one of {', '.join(ROLES)}"
    if obj["turn"] < 0:
        return "wrong-type", f"field 'turn' must be >= 0, got {str(obj['turn'])[:40]}"
    if obj["turn"] > TURN_MAX:
        return "out-of-range", f"field 'turn' is {str(obj['turn'])[:40]}, above the largest turn {TURN_MAX}"
    if not obj["session_id"].strip():
        return "wrong-type", "field 'session_id' is empty"
    return None


def _messages_from_columns(cols: dict[str, list], source_file: str, file_sha256: str) -> pa.Table:
    """Build the messages table, computing each message's content id."""
    ids = [message_id(s, t, r, ts, c) for s, t, r, ts, c in
           zip(cols["session_id"], cols["turn"], cols["role"], cols["timestamp_raw"], cols["content"])]
    n = len(ids)
    return pa.table({
        "message_id": pa.array(ids, pa.string()),
        "source_file": pa.array([source_file] * n, pa.string()),
        "file_sha256": pa.array([file_sha256] * n, pa.string()),
        "line_no": pa.array(cols["line_no"], pa.int32()),
        "session_id": pa.array(cols["session_id"], pa.string()),
        "turn": pa.array(cols["turn"], pa.int64()),
        "role": pa.array(cols["role"], pa.string()),
        "timestamp": cols["timestamp"] if isinstance(cols["timestamp"], pa.Array) else pa.array(cols["timestamp"], _TS),
        "content": pa.array(cols["content"], pa.string()),
    }, schema=MESSAGES)


def _parse_fast(data: bytes, source_file: str, file_sha256: str, cfg: IngestConfig) -> ParsedFile | None:
    """Parse a clean file with Arrow's JSON reader; None when any line needs the careful path."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) == 0 or ends[-1] != len(data) - 1:
        return None  # no final newline: let the careful path handle the last line
    lengths = np.diff(ends, prepend=-1) - 1
    if lengths.min() < 2 or lengths.max() > cfg.max_message_bytes:
        return None  # blank lines shift line numbers; long lines are quarantined
    try:
        raw = pajson.read_json(io.BytesIO(data), parse_options=_PARSE)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if raw.num_rows != len(ends) or any(raw[c].null_count for c in _RAW_SCHEMA.names):
        return None
    roles_ok = pc.all(pc.is_in(raw["role"], value_set=pa.array(ROLES))).as_py()
    turns_ok = pc.min(raw["turn"]).as_py() >= 0
    sessions_ok = pc.min(pc.utf8_length(pc.utf8_trim_whitespace(raw["session_id"]))).as_py() > 0
    if not (roles_ok and turns_ok and sessions_ok):
        return None
    try:
        ts = pc.cast(raw["timestamp"], _TS).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pc.min(ts).value < _TS_MIN or pc.max(ts).value > _TS_MAX:
        return None  # beyond what a datetime holds (e.g. year 9999 at UTC-5): the careful path quarantines it
    cols = {name: raw[name].to_pylist() for name in ("session_id", "turn", "role", "content")}
    cols["timestamp_raw"] = raw["timestamp"].to_pylist()
    cols["timestamp"] = ts
    cols["line_no"] = list(range(1, raw.num_rows + 1))
    return ParsedFile(_messages_from_columns(cols, source_file, file_sha256), quarantine_rows([]), raw.num_rows)


def _decode_deep(raw: bytes) -> dict | None:
    """A line nested too deeply for `json`: Arrow's parser reads its five fields (deep extras are skipped,
    as on the fast path); None when that does not give one complete message."""
    try:
        row = pajson.read_json(io.BytesIO(raw + b"\n"), parse_options=_PARSE)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if row.num_rows != 1 or any(row[c].null_count for c in _RAW_SCHEMA.names):
        return None
    return row.to_pylist()[0]


def _parse_careful(data: bytes, source_file: str, file_sha256: str, cfg: IngestConfig) -> ParsedFile:
    """Parse line by line, sending each bad line to quarantine with its reason."""
    cols: dict[str, list] = {k: [] for k in ("session_id", "turn", "role", "content", "timestamp_raw",
                                             "timestamp", "line_no")}
    bad: list[tuple] = []
    lines = 0
    limit = cfg.max_message_bytes
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue  # blank lines (and the final newline) carry nothing
        lines += 1
        obj, ts, problem = None, None, None
        if len(raw) > limit:
            problem = ("too-large", f"line is {len(raw)} bytes, limit {limit} (ingest.max_message_bytes)")
        else:
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problem = ("invalid-utf8", f"byte {exc.start}: {exc.reason}")
            except ValueError as exc:
                problem = ("invalid-json", str(exc)[:200])
            except RecursionError:
                obj = _decode_deep(raw)
                if obj is None:
                    problem = ("too-deep", "JSON nested deeper than the parser's limit (about "
                               f"{sys.getrecursionlimit()} levels) and not a message object")
        if problem is None:
            problem = _check(obj)
        if problem is None:
            try:
                ts = _parse_timestamp(obj["timestamp"])
            except ValueError:
                problem = ("bad-timestamp", f"timestamp {obj['timestamp'][:40]!r} is not ISO-8601")
            except OverflowError:
                problem = ("bad-timestamp", f"timestamp {obj['timestamp'][:40]!r} is outside years 1-9999 in UTC")
        if problem:
            bad.append((source_file, file_sha256, line_no, problem[0], problem[1], raw))
            continue
        for key in ("session_id", "turn", "role", "content"):
            cols[key].append(obj[key])
        cols["timestamp_raw"].append(obj["timestamp"])
        cols["timestamp"].append(ts)
        cols["line_no"].append(line_no)
    return ParsedFile(_messages_from_columns(cols, source_file, file_sha256), quarantine_rows(bad), lines)


def parse_session_file(data: bytes, source_file: str, file_sha256: str, cfg: IngestConfig) -> ParsedFile:
    """Parse one JSONL session file; every line becomes a message or a quarantine row."""
    if not data.strip():
        q = quarantine_rows([(source_file, file_sha256, 0, "empty-file", "the file holds no messages", data[:1024])])
        return ParsedFile(MESSAGES.empty_table(), q, 0)
    return _parse_fast(data, source_file, file_sha256, cfg) or _parse_careful(data, source_file, file_sha256, cfg)


def merge_parsed(parts: list[ParsedFile]) -> ParsedFile:
    """Concatenate the parse results of several files."""
    return ParsedFile(pa.concat_tables([MESSAGES.empty_table()] + [p.messages for p in parts]),
                      pa.concat_tables([QUARANTINE.empty_table()] + [p.quarantine for p in parts]),
                      sum(p.lines for p in parts))


# Window functions run over keys only; the texts are gathered afterwards by row index.
# `prio`: 0 = a warehouse message already in an exchange, 1 = any other warehouse message, 2 = this batch's.
# A message_id seen twice is one message (its first copy stands for it); per (session, turn, role) the first
# message wins, in that order, then by arrival (run id), file and line.
_RANK_SQL = """
WITH once AS (
  SELECT *, bool_or(prio = 2) OVER (PARTITION BY message_id) AS in_batch,
         row_number() OVER (PARTITION BY message_id ORDER BY prio, arrival, source_file, line_no) AS copy
  FROM keys
)
SELECT idx, session_id, turn, role, source_file, line_no, in_batch,
       row_number() OVER (PARTITION BY session_id, turn, role ORDER BY prio, arrival, source_file, line_no) AS nth,
       count(DISTINCT role) OVER (PARTITION BY session_id, turn) AS roles
FROM once WHERE copy = 1
"""
_PAIR_SQL = """
WITH r AS (SELECT * FROM ranked WHERE nth = 1 AND roles = 2)
SELECT u.idx AS u, a.idx AS a FROM r u JOIN r a ON u.session_id = a.session_id AND u.turn = a.turn
WHERE u.role = 'user' AND a.role = 'assistant'
ORDER BY u.source_file, u.line_no
"""


def pair_exchanges(messages: pa.Table, earlier: pa.Table | None = None,
                   paired: pa.Array | None = None) -> tuple[pa.Table, pa.Table]:
    """Pair the user and assistant message of each (session, turn); unpaired lines go to quarantine.

    `messages` are this batch's. `earlier` (messages' columns plus `run_id`) are the warehouse's messages of the
    same (session, turn)s and `paired` the ids of those already in an exchange: a turn that already has an
    exchange keeps it (a later message for it is a duplicate-turn), and a turn split across batches pairs as
    if it came in one. A message read again (same content, same id) is the same message, not a duplicate.
    Returns every exchange the pool forms (known ones too: the caller drops those by id) and quarantine rows
    for this batch's lines only.
    """
    if earlier is None:
        earlier = MESSAGES.empty_table().append_column("run_id", pa.array([], pa.string()))
    pool = pa.concat_tables([earlier.select(MESSAGES.names), messages.select(MESSAGES.names)])
    known = pa.array([], pa.string()) if paired is None else paired
    prio = pa.concat_arrays([
        pc.if_else(pc.is_in(earlier["message_id"], value_set=known), 0, 1).combine_chunks().cast(pa.int8()),
        pa.array(np.full(messages.num_rows, 2, dtype=np.int8)),
    ])
    arrival = pa.concat_arrays([earlier["run_id"].combine_chunks().cast(pa.string()),
                                pa.array([""] * messages.num_rows, pa.string())])
    keys = pool.select(["message_id", "session_id", "turn", "role", "source_file", "line_no"]).append_column(
        "idx", pa.array(np.arange(pool.num_rows, dtype=np.int64))).append_column("prio", prio).append_column(
        "arrival", arrival)
    con = duckdb.connect(":memory:")
    con.register("keys", keys)
    ranked = con.sql(_RANK_SQL).to_arrow_table()
    con.register("ranked", ranked)
    order = con.sql(_PAIR_SQL).to_arrow_table()
    con.close()
    u, a = pool.take(order["u"]), pool.take(order["a"])
    ids = [exchange_id(s, t, ut, at) for s, t, ut, at in zip(
        u["session_id"].to_pylist(), u["turn"].to_pylist(), u["content"].to_pylist(), a["content"].to_pylist())]
    exchanges = pa.table({
        "exchange_id": pa.array(ids, pa.string()), "session_id": u["session_id"], "turn": u["turn"],
        "timestamp": u["timestamp"], "user_text": u["content"], "assistant_text": a["content"],
        "user_message_id": u["message_id"], "assistant_message_id": a["message_id"],
        "source_file": u["source_file"], "file_sha256": u["file_sha256"],
        "user_line": u["line_no"], "assistant_line": a["line_no"],
    }, schema=EXCHANGES)
    return exchanges, _unpaired(pool, ranked)


def _unpaired(messages: pa.Table, ranked: pa.Table) -> pa.Table:
    """Quarantine rows for this batch's duplicate messages of a turn and turns missing one side."""
    bad = ranked.filter(pc.and_(ranked["in_batch"],
                                pc.or_(pc.greater(ranked["nth"], 1), pc.less(ranked["roles"], 2))))
    rows = []
    for idx, nth in zip(bad["idx"].to_pylist(), bad["nth"].to_pylist()):
        m = {k: messages[k][idx].as_py() for k in ("source_file", "file_sha256", "line_no", "session_id",
                                                    "turn", "role", "content")}
        if nth > 1:
            reason, detail = "duplicate-turn", f"a second {m['role']} message for session {m['session_id'][:80]!r} turn {m['turn']}"
        elif m["role"] == "user":
            reason, detail = "no-answer", f"user message of turn {m['turn']} has no assistant reply"
        else:
            reason, detail = "no-question", f"assistant message of turn {m['turn']} has no user message"
        rows.append((m["source_file"], m["file_sha256"], m["line_no"], reason, detail, m["content"].encode()))
    rows.sort(key=lambda r: (r[0], r[2]))
    return quarantine_rows(rows)
