"""Forgetting: what a selector takes back (through lineage), the tombstones, and the purge that erases the
forgotten words from the home.

A pair is forgotten with the words it came from: forgetting a pair forgets its source exchanges (their user
and assistant messages), and every other pair found only in those words goes with them. Tombstones hold ids,
never words; the purge deletes the tombstoned rows, masks the forgotten values wherever else a text holds
them (gate details, evaluation answers, run summaries, quarantined bytes, the Prefect database) and erases
the weights of every model version and adapter that learned them, keeping their manifests marked `purged`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.atomic import atomic_path, write_text_atomic
from storage.catalog import connect
from storage.errors import LineageError
from storage.home import Home
from storage.registry import MANIFEST
from storage.runs import utcnow
from storage.schemas import schema_of
from storage.sql import arrow, in_list, prepare, resolve_id
from storage.warehouse import read_table, table_files, write_table

MASK = "[forgotten]"
# Rows deleted outright by the purge: the table's id column -> which tombstones it is checked against.
KEYED = {
    "messages": [("message_id", "message")],
    "exchanges": [("exchange_id", "exchange")],
    "scored_exchanges": [("exchange_id", "exchange")],
    "candidate_pairs": [("pair_id", "pair"), ("exchange_id", "exchange")],
    "pairs": [("pair_id", "pair"), ("exchange_id", "exchange")],
    "rejections": [("pair_id", "pair"), ("exchange_id", "exchange")],
    "replay_buffer": [("pair_id", "pair")],
    "training_examples": [("pair_id", "pair")],
}
# Tables whose text is never a person's words: the root model's answers to shipped prompts, numbers, ids.
UNTOUCHED = {"anchor_answers", "train_steps", "model_versions", "model_events", "ingested_files", "forgotten"}
# A test (or a person checking the purge's crash safety) may ask a purge to SIGKILL itself at its Nth step.
KILL_AT = "SLOWWAVE_PURGE_KILL_AT"


@dataclass(frozen=True)
class Forgotten:
    """Every tombstoned id, by kind."""

    pairs: frozenset[str] = frozenset()
    exchanges: frozenset[str] = frozenset()
    messages: frozenset[str] = frozenset()
    by_item: dict = field(default_factory=dict)  # item id -> request id

    def covers(self, pair_id: str, exchange_ids) -> str | None:
        """The request that forgot this pair or one of its exchanges, or None."""
        for item in (pair_id, *exchange_ids):
            if item in self.pairs or item in self.exchanges:
                return self.by_item[item]
        return None

    def __bool__(self) -> bool:
        return bool(self.pairs or self.exchanges or self.messages)


def forgotten(home: Home) -> Forgotten:
    """The home's tombstones (empty when nothing was ever forgotten)."""
    rows = read_table(home, "forgotten", columns=["request_id", "kind", "item_id"]).to_pylist()
    kinds: dict[str, set[str]] = {"pair": set(), "exchange": set(), "message": set()}
    for r in rows:
        kinds[r["kind"]].add(r["item_id"])
    return Forgotten(frozenset(kinds["pair"]), frozenset(kinds["exchange"]), frozenset(kinds["message"]),
                     {r["item_id"]: r["request_id"] for r in rows})


def drop_forgotten(table: pa.Table, column: str, ids: frozenset[str]) -> pa.Table:
    """Rows of `table` whose `column` is not a forgotten id."""
    if not ids or table.num_rows == 0:
        return table
    return table.filter(pc.invert(pc.is_in(table[column], value_set=pa.array(sorted(ids), pa.string()))))


@dataclass
class Selection:
    """What a selector takes back: the pairs, the words they came from, and everything that learned them."""

    selector: str
    pairs: pa.Table  # pair_id, status, fact_type, question, answer, value
    exchanges: pa.Table  # exchange_id, session_id, turn, source_file, user_line
    messages: list[str]
    replay_entries: int
    runs: list[str]
    adapters: list[str]
    versions: list[str]  # model versions holding a selected pair (fused from one of `adapters`, or descending)

    def counts(self) -> dict:
        return {"pairs": self.pairs.num_rows, "exchanges": self.exchanges.num_rows, "messages": len(self.messages),
                "replay_entries": self.replay_entries, "runs": len(self.runs), "adapters": len(self.adapters),
                "versions": len(self.versions)}


_PAIR_TABLES = ("pairs", "candidate_pairs", "rejections")


def _cited(con, exchanges: list[str]) -> list[str]:
    """Every pair (accepted, candidate or rejected) found in any of `exchanges`."""
    ids = in_list(exchanges)
    return [r[0] for r in con.sql(f"""
        SELECT pair_id FROM pairs WHERE exchange_id IN {ids} OR list_has_any(source_exchange_ids, {_list(exchanges)})
        UNION SELECT pair_id FROM candidate_pairs WHERE exchange_id IN {ids}
              OR list_has_any(source_exchange_ids, {_list(exchanges)})
        UNION SELECT pair_id FROM rejections WHERE exchange_id IN {ids}""").fetchall()]


def _list(values) -> str:
    """A DuckDB list literal of strings."""
    vals = sorted(set(values))
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in vals) + "]::VARCHAR[]" if vals else "[]::VARCHAR[]"


def _sources_of(con, pairs: list[str]) -> list[str]:
    """Every exchange any of `pairs` was found in."""
    ids = in_list(pairs)
    return [r[0] for r in con.sql(f"""
        SELECT exchange_id FROM pairs WHERE pair_id IN {ids}
        UNION SELECT unnest(source_exchange_ids) FROM pairs WHERE pair_id IN {ids}
        UNION SELECT exchange_id FROM candidate_pairs WHERE pair_id IN {ids}
        UNION SELECT unnest(source_exchange_ids) FROM candidate_pairs WHERE pair_id IN {ids}
        UNION SELECT exchange_id FROM rejections WHERE pair_id IN {ids}""").fetchall()]


def select(home: Home, *, pair: str | None = None, search: str | None = None, exchange: str | None = None,
           session: str | None = None) -> Selection:
    """Resolve one selector to everything it takes back; LineageError (one line) when it matches nothing or is
    ambiguous."""
    from storage.lineage import resolve_exchange, resolve_pair, search_pairs

    con = connect(home)
    try:
        prepare(con)
        pairs: set[str] = set()
        exchanges: set[str] = set()
        session_messages: list[str] = []
        if pair is not None:
            pid = resolve_pair(con, pair)
            pairs.add(pid)
            selector = f"pair:{pid}"
        elif search is not None:
            found = search_pairs(con, search)
            if not found.num_rows:
                raise LineageError("no pair matches those words; nothing to forget (`slowwave lineage --search "
                                   "WORDS` shows what is known)")
            pairs |= set(found["pair_id"].to_pylist())
            n = len(search.split())
            selector = f"search ({n} word{'' if n == 1 else 's'}, not kept)"
        elif exchange is not None:
            eid = resolve_exchange(con, exchange)
            exchanges.add(eid)
            selector = f"exchange:{eid}"
        elif session is not None:
            sid = resolve_id(con, session, "", "session", ["messages"], "session_id")
            exchanges |= {r[0] for r in con.sql("SELECT exchange_id FROM exchanges WHERE session_id = $s",
                                               params={"s": sid}).fetchall()}
            session_messages = [r[0] for r in con.sql("SELECT message_id FROM messages WHERE session_id = $s",
                                                      params={"s": sid}).fetchall()]
            selector = f"session:{sid}"
        else:
            raise LineageError("say what to forget: a pair id, --search WORDS, --exchange ID or --session ID")
        # The words and the pairs found in them, until nothing new turns up.
        while True:
            more_ex = set(_sources_of(con, sorted(pairs))) - exchanges if pairs else set()
            exchanges |= more_ex
            more_pairs = set(_cited(con, sorted(exchanges))) - pairs if exchanges else set()
            pairs |= more_pairs
            if not more_ex and not more_pairs:
                break
        return _selection(con, selector, sorted(pairs), sorted(exchanges), session_messages)
    finally:
        con.close()


def _selection(con, selector: str, pairs: list[str], exchanges: list[str], extra_messages: list[str]) -> Selection:
    p, x = in_list(pairs), in_list(exchanges)
    found = arrow(con, f"""
        SELECT pair_id, status, fact_type, question, answer, value FROM (
            SELECT pair_id, 'accepted' AS status, fact_type, question, answer, value, 0 AS o FROM pairs
                WHERE pair_id IN {p}
            UNION ALL SELECT pair_id, 'candidate', fact_type, question, answer, value, 1 FROM candidate_pairs
                WHERE pair_id IN {p}
            UNION ALL SELECT pair_id, 'rejected', fact_type, question, answer, NULL, 2 FROM rejections
                WHERE pair_id IN {p})
        QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY o) = 1 ORDER BY pair_id""")
    ex = arrow(con, f"""SELECT exchange_id, session_id, turn, source_file, user_line, user_message_id,
                               assistant_message_id FROM exchanges WHERE exchange_id IN {x}
                        QUALIFY row_number() OVER (PARTITION BY exchange_id ORDER BY run_id) = 1
                        ORDER BY session_id, turn""")
    messages = sorted(set(ex["user_message_id"].to_pylist()) | set(ex["assistant_message_id"].to_pylist())
                      | set(extra_messages))
    replay = con.sql(f"""SELECT count(*) FROM replay_buffer WHERE pair_id IN {p}
                         AND run_id = (SELECT max(run_id) FROM replay_buffer)""").fetchall()[0][0]
    runs, adapters, versions = usage(con, pairs)
    return Selection(selector, found, ex.drop_columns(["user_message_id", "assistant_message_id"]), messages,
                     int(replay), runs, adapters, versions)


def usage(con, pairs: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(training runs that used any of `pairs`, the adapters they trained, the model versions that hold them:
    fused from one of those adapters, or descending from one that was)."""
    p = in_list(pairs)
    runs = [r[0] for r in con.sql(f"SELECT DISTINCT run_id FROM training_examples WHERE pair_id IN {p} "
                                  "ORDER BY 1").fetchall()]
    r = in_list(runs)
    adapters = [a[0] for a in con.sql(f"""SELECT adapter_id FROM train_steps WHERE run_id IN {r}
                                           UNION SELECT adapter_id FROM gate_results WHERE run_id IN {r}
                                           ORDER BY 1""").fetchall()]
    versions = [v[0] for v in con.sql(f"""WITH RECURSIVE
        mv AS (SELECT DISTINCT version, parent, adapter_id FROM model_versions),
        holds(version) AS (SELECT version FROM mv WHERE adapter_id IN {in_list(adapters)}
                           UNION SELECT mv.version FROM holds h JOIN mv ON mv.parent = h.version)
        SELECT version FROM holds ORDER BY 1""").fetchall()]
    return runs, adapters, versions


def record_request(home: Home, request_id: str, run_id: str, selection: Selection, reason: str | None) -> None:
    """The request's first row, then its tombstones (a request row without tombstones forgets nothing yet: the
    tombstones are what every later stage reads)."""
    at = utcnow()
    write_request_status(home, request_id, run_id, selection.selector, reason, "requested", selection.counts(), {})
    items = ([("pair", i) for i in selection.pairs["pair_id"].to_pylist()]
             + [("exchange", i) for i in selection.exchanges["exchange_id"].to_pylist()]
             + [("message", i) for i in selection.messages])
    write_table(home, "forgotten", run_id, pa.Table.from_pylist(
        [{"request_id": request_id, "kind": k, "item_id": i, "at": at} for k, i in items], schema=schema_of(
            "forgotten").remove(schema_of("forgotten").get_field_index("run_id"))))


def write_request_status(home: Home, request_id: str, run_id: str, selector: str, reason: str | None, status: str,
                         counts: dict, detail: dict) -> None:
    """Append a row to the request's history: its newest row is its state."""
    write_table(home, "forget_requests", run_id, pa.Table.from_pylist([{
        "request_id": request_id, "at": utcnow(), "selector": selector, "reason": reason, "status": status,
        "counts_json": json.dumps(counts, sort_keys=True), "detail_json": json.dumps(detail, sort_keys=True,
                                                                                       default=str)}]))


def request_items(home: Home, request_id: str, kind: str) -> list[str]:
    """The ids of one kind (pair, exchange, message) a request tombstoned."""
    rows = read_table(home, "forgotten", columns=["request_id", "kind", "item_id"])
    rows = rows.filter(pc.and_(pc.equal(rows["request_id"], request_id), pc.equal(rows["kind"], kind)))
    return sorted(set(rows["item_id"].to_pylist()))


def requests(home: Home) -> dict[str, dict]:
    """Every forget request's newest row, by request id (oldest request first)."""
    rows = sorted(read_table(home, "forget_requests").to_pylist(), key=lambda r: (r["at"], r["run_id"]))
    latest: dict[str, dict] = {}
    for r in rows:
        latest[r["request_id"]] = r
    return latest


# ---------------------------------------------------------------------------------------------------------------
# The purge: every step is idempotent and atomic, so a kill at any point and a rerun end in the same state.

class Masker:
    """Replaces every forgotten text in a string: the whole forgotten messages, then each forgotten value as a
    word (values under 3 characters or without a letter are left: masking "6" would mangle every number)."""

    def __init__(self, texts: list[str], values: list[str]):
        self.texts = sorted({t for t in texts if t and t.strip()}, key=len, reverse=True)
        words = sorted({v.strip() for v in values if v and len(v.strip()) >= 3 and re.search(r"[^\W\d_]", v)},
                       key=len, reverse=True)
        self.words = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)",
                                re.IGNORECASE) if words else None
        escaped = [json.dumps(t, ensure_ascii=False)[1:-1] for t in self.texts]
        self.texts += [e for e in escaped if e not in self.texts]

    def __bool__(self) -> bool:
        return bool(self.texts or self.words)

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        for t in self.texts:
            if t in text:
                text = text.replace(t, MASK)
        return self.words.sub(MASK, text) if self.words else text

    def bytes(self, raw: bytes | None) -> bytes | None:
        if not raw:
            return raw
        text = raw.decode("utf-8", "surrogateescape")
        masked = self(text)
        return raw if masked == text else masked.encode("utf-8", "surrogateescape")


def masker_for(home: Home, gone: Forgotten) -> Masker:
    """The words to erase: the forgotten messages' texts and the forgotten pairs' values and answers."""
    def rows(table: str, key: str, ids: frozenset[str], columns: list[str]) -> pa.Table:
        found = read_table(home, table, columns=[key, *columns])
        return found.filter(pc.is_in(found[key], value_set=pa.array(sorted(ids), pa.string())))

    ex = rows("exchanges", "exchange_id", gone.exchanges, ["user_text", "assistant_text"])
    texts = ex["user_text"].to_pylist() + ex["assistant_text"].to_pylist()
    texts += rows("messages", "message_id", gone.messages, ["content"])["content"].to_pylist()
    values: list[str] = []
    for table in ("pairs", "candidate_pairs"):
        found = rows(table, "pair_id", gone.pairs, ["value", "answer"])
        values += found["value"].to_pylist()
        texts += found["answer"].to_pylist()
    texts += rows("rejections", "pair_id", gone.pairs, ["answer"])["answer"].to_pylist()
    return Masker(texts, values)


class Killer:
    """Counts the purge's steps; SIGKILLs this process at step $SLOWWAVE_PURGE_KILL_AT (crash-safety tests)."""

    def __init__(self, say: Callable[[str], None]):
        raw = os.environ.get(KILL_AT, "")
        self.at = int(raw) if raw.isdigit() else None
        self.n = 0
        self.say = say

    def step(self, what: str) -> None:
        self.n += 1
        if self.at == self.n:
            self.say(f"purge: step {self.n} ({what}): killed by {KILL_AT}")
            os.kill(os.getpid(), signal.SIGKILL)


def _strip_folder(folder: Path, request_id: str, kill: Killer) -> bool:
    """Mark a version's or adapter's manifest purged (atomically), then delete every other file in it; True when
    anything changed. The manifest first: a kill between leaves a folder that says it is purged, never weights
    that claim to be whole."""
    mpath = folder / MANIFEST
    if not mpath.exists():
        return False
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    changed = False
    if not manifest.get("purged"):
        kill.step(f"mark {folder.name} purged")
        manifest["purged"] = {"request_id": request_id, "at": utcnow().isoformat()}
        write_text_atomic(mpath, json.dumps(manifest, indent=2, sort_keys=True))
        changed = True
    for p in sorted(folder.rglob("*"), reverse=True):
        if p.is_file() and p.name != MANIFEST:
            kill.step(f"delete {folder.name}/{p.relative_to(folder)}")
            p.unlink()
            changed = True
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    return changed


def _rewrite_part(path: Path, table: str, gone: Forgotten, mask: Masker, kill: Killer) -> tuple[int, int]:
    """One Parquet part without its forgotten rows and with every forgotten word masked, written over the old
    part in one rename (a kill leaves the old part or the new, never both, never neither); (rows removed,
    cells masked)."""
    data = pq.read_table(path, schema=schema_of(table))
    keep = None
    for column, kind in KEYED.get(table, []):
        ids = {"pair": gone.pairs, "exchange": gone.exchanges, "message": gone.messages}[kind]
        if ids:
            hit = pc.is_in(data[column], value_set=pa.array(sorted(ids), pa.string()))
            hit = pc.fill_null(hit, False)
            keep = pc.invert(hit) if keep is None else pc.and_(keep, pc.invert(hit))
    removed = 0
    if keep is not None:
        before = data.num_rows
        data = data.filter(keep)
        removed = before - data.num_rows
    masked = 0
    if mask and table not in UNTOUCHED and data.num_rows:
        cols = {}
        for f in data.schema:
            col = data[f.name]
            if pa.types.is_string(f.type):
                vals = col.to_pylist()
                new = [mask(v) for v in vals]
            elif pa.types.is_binary(f.type):
                vals = col.to_pylist()
                new = [mask.bytes(v) for v in vals]
            elif pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type):
                vals = col.to_pylist()
                new = [None if v is None else [mask(x) for x in v] for v in vals]
            else:
                continue
            n = sum(1 for a, b in zip(vals, new) if a != b)
            if n:
                masked += n
                cols[f.name] = pa.array(new, f.type)
        for name, arr in cols.items():
            data = data.set_column(data.schema.get_field_index(name), name, arr)
    if not removed and not masked:
        return 0, 0
    kill.step(f"rewrite {table}/{path.parent.name}/{path.name}")
    if data.num_rows == 0:
        path.unlink()
        return removed, masked
    with atomic_path(path) as tmp:
        pq.write_table(data, tmp, compression="zstd")
    return removed, masked


def _scrub_text_file(path: Path, mask: Masker, kill: Killer) -> bool:
    raw = path.read_bytes()
    new = mask.bytes(raw)
    if new == raw:
        return False
    kill.step(f"rewrite {path.name}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(new)
    return True


def scrub_prefect_db(db: Path, mask: Masker, kill: Killer) -> int:
    """Mask the forgotten words in every text column of Prefect's SQLite database (artifacts, logs, states,
    parameters), then VACUUM so no freed page keeps the old bytes; the number of cells changed."""
    if not db.exists() or not mask:
        return 0
    con = sqlite3.connect(db, timeout=60)
    try:
        con.execute("PRAGMA secure_delete = ON")  # the space an old value leaves is zeroed, not left in the page
        con.create_function("slowwave_mask", 1, lambda v: mask(v) if isinstance(v, str) else v, deterministic=True)
        changed = 0
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')
                    if (r[2] or "").upper() in ("", "TEXT", "JSON", "VARCHAR", "CLOB") or "CHAR" in (r[2] or "").upper()]
            for col in cols:
                cur = con.execute(f'UPDATE "{table}" SET "{col}" = slowwave_mask("{col}") '
                                  f'WHERE typeof("{col}") = \'text\' AND slowwave_mask("{col}") <> "{col}"')
                changed += cur.rowcount
        if changed:
            kill.step("scrub the Prefect database")
        con.commit()  # also ends the transaction an UPDATE that changed nothing opened: VACUUM needs none
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no old page left in the write-ahead log
        if changed or con.execute("PRAGMA freelist_count").fetchone()[0]:
            kill.step("vacuum the Prefect database")
            con.execute("VACUUM")  # no freed page keeps the old bytes
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return changed
    finally:
        con.close()


@dataclass
class PurgeReport:
    versions: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    rows_removed: dict[str, int] = field(default_factory=dict)
    cells_masked: dict[str, int] = field(default_factory=dict)
    files_rewritten: int = 0
    prefect_cells: int = 0

    def as_dict(self) -> dict:
        return {"versions": self.versions, "adapters": self.adapters, "rows_removed": self.rows_removed,
                "cells_masked": self.cells_masked, "files_rewritten": self.files_rewritten,
                "prefect_cells": self.prefect_cells}


# The tables the mask's words are read from: purged last, so a rerun after a kill re-derives the whole mask for
# everything before them. A person's own messages outside the selection are kept as they were said.
SOURCES = ("pairs", "candidate_pairs", "rejections", "messages", "exchanges")
UNMASKED = {"messages", "exchanges"}


def purge(home: Home, request_id: str, run_id: str, versions: list[str], adapters: list[str], gone: Forgotten,
          say: Callable[[str], None] = print) -> PurgeReport:
    """Erase what `gone` names from the home: the weights of `versions` and `adapters`, the tombstoned rows, every
    forgotten word in the warehouse, the runs' files, the inbox logs and the Prefect database."""
    kill = Killer(say)
    report = PurgeReport()
    mask = masker_for(home, gone)  # read before the rows that hold the words are removed
    for name in versions:
        if _strip_folder(home.models / name, request_id, kill):
            report.versions.append(name)
    for aid in adapters:
        if _strip_folder(home.adapters / aid, request_id, kill):
            report.adapters.append(aid)
    present = _tables(home)

    def rewrite(tables: list[str]) -> None:
        for table in tables:
            for path in table_files(home, table):
                removed, masked = _rewrite_part(path, table, gone, Masker([], []) if table in UNMASKED else mask,
                                                kill)
                if removed:
                    report.rows_removed[table] = report.rows_removed.get(table, 0) + removed
                if masked:
                    report.cells_masked[table] = report.cells_masked.get(table, 0) + masked

    rewrite([t for t in sorted(present) if t not in SOURCES])
    # Everything that is not a source table, before any source table loses a row the mask is read from.
    report.files_rewritten += _scrub_files(home, run_id, mask, kill)
    report.prefect_cells = scrub_prefect_db(home.root / "prefect" / "prefect.db", mask, kill)
    rewrite([t for t in SOURCES if t in present])
    return report


def _scrub_files(home: Home, run_id: str, mask: Masker, kill: Killer) -> int:
    """Mask the forgotten words in the runs' text files and in the session logs under the home's inbox; a
    rewritten log's new sha256 is recorded as ingested, so it is not read again as a new file."""
    n = 0
    for path in sorted(home.runs.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".txt", ".md", ".csv", ".html", ".log"):
            n += _scrub_text_file(path, mask, kill)
    inbox = home.root / "inbox"
    for path in sorted(inbox.rglob("*.jsonl")) if inbox.is_dir() else []:
        if path.is_file() and _scrub_text_file(path, mask, kill):
            n += 1
            from storage.ids import sha256_file

            data = path.read_bytes()
            write_table(home, "ingested_files", run_id, pa.Table.from_pylist([{
                "file_sha256": sha256_file(path), "source_file": str(path), "size_bytes": len(data),
                "lines": data.count(b"\n"), "messages": 0, "exchanges": 0, "quarantined": 0}]))
    return n


def _tables(home: Home) -> set[str]:
    from storage.schemas import SCHEMAS

    return {t for t in SCHEMAS if table_files(home, t)}
