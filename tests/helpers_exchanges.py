"""Test helper: read session JSONL files with plain json into an `exchanges` table (no run_id)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from storage.ids import exchange_id, message_id, sha256_file
from storage.schemas import SCHEMAS

EXCHANGES = SCHEMAS["exchanges"].remove(SCHEMAS["exchanges"].get_field_index("run_id"))
REPO = Path(__file__).resolve().parents[1]
EVAL_CASE = REPO / "tasks" / "data" / "eval_case"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sleeping-llm"


def _ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value)
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def read_exchanges(paths: list[Path]) -> pa.Table:
    """Pair the user and assistant message of each (session_id, turn) into one exchange row."""
    rows = []
    for path in sorted(paths):
        sha = sha256_file(path)
        turns: dict[tuple[str, int], dict[str, tuple[int, dict]]] = {}
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                msg = json.loads(line)
                turns.setdefault((msg["session_id"], msg["turn"]), {})[msg["role"]] = (line_no, msg)
        for (sid, turn), pair in turns.items():
            if set(pair) != {"user", "assistant"}:
                continue
            (u_line, u), (a_line, a) = pair["user"], pair["assistant"]
            rows.append({
                "exchange_id": exchange_id(sid, turn, u["content"], a["content"]),
                "session_id": sid, "turn": turn, "timestamp": _ts(u["timestamp"]),
                "user_text": u["content"], "assistant_text": a["content"],
                "user_message_id": message_id(sid, turn, "user", u["timestamp"], u["content"]),
                "assistant_message_id": message_id(sid, turn, "assistant", a["timestamp"], a["content"]),
                "source_file": str(path), "file_sha256": sha, "user_line": u_line, "assistant_line": a_line,
            })
    return pa.Table.from_pylist(rows, schema=EXCHANGES)


def exchanges_from_texts(items: list[tuple[str, str]], session_id: str = "s1",
                         start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)) -> pa.Table:
    """An exchanges table from literal (user_text, assistant_text) pairs, one turn a minute apart."""
    rows = []
    for turn, (user, assistant) in enumerate(items):
        rows.append({
            "exchange_id": exchange_id(session_id, turn, user, assistant), "session_id": session_id, "turn": turn,
            "timestamp": start.replace(minute=turn % 60, hour=turn // 60), "user_text": user,
            "assistant_text": assistant, "user_message_id": f"msg_u{turn}", "assistant_message_id": f"msg_a{turn}",
            "source_file": "literal.jsonl", "file_sha256": "0" * 64, "user_line": 2 * turn + 1,
            "assistant_line": 2 * turn + 2,
        })
    return pa.Table.from_pylist(rows, schema=EXCHANGES)
