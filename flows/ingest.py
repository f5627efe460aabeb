"""Ingest recipe: read session files, parse, pair, validate, then persist (stage 0)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import exchanges_frame
from flows.checks import check
from flows.retries import retry_transient
from storage.errors import InputError
from storage.home import Home
from storage.ids import new_run_id
from storage.lock import command_line, home_lock
from storage.inbox import UnreadableFile, display_path, list_session_files, read_session_file
from storage.forget import MASK, drop_forgotten, forgotten
from storage.runs import read_committed, record_run, utcnow
from storage.schemas import schema_of
from storage.warehouse import read_table, table_files, write_table
from tasks.ingest import (
    IngestConfig,
    ParsedFile,
    merge_parsed,
    pair_exchanges,
    parse_session_file,
    quarantine_rows,
)


@dataclass
class IngestReport:
    """What one ingest did, in numbers."""

    run_id: str
    files: int = 0
    files_skipped: int = 0
    lines: int = 0
    messages: int = 0
    exchanges_added: int = 0
    exchanges_skipped: int = 0
    quarantined: Counter = field(default_factory=Counter)  # rows newly quarantined by this ingest, by reason
    quarantine_known: int = 0  # bad lines found again that the quarantine already holds (same file, line, bytes)
    unreadable: list[str] = field(default_factory=list)  # "file:0: unreadable — why", one per file
    input_files: list[str] = field(default_factory=list)
    input_sha256: list[str] = field(default_factory=list)

    @property
    def nothing_readable(self) -> bool:
        """True when files were given but not one message could be read from them.

        The CLI's exit code: 1 only then. Bad lines and unreadable files are quarantined and named on stderr, one
        line each, and the rest is ingested with exit 0, so one bad file never holds back a night's logs.
        """
        return self.files > 0 and self.messages == 0 and self.files_skipped == 0

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        q = sum(self.quarantined.values())
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.quarantined.items()))
        dup = self.files_skipped + self.exchanges_skipped
        text = (f"ingest: {self.files} file(s), {self.lines} line(s), {self.exchanges_added} exchange(s) added, "
                f"{dup} duplicate(s) skipped ({self.files_skipped} file(s) already ingested, "
                f"{self.exchanges_skipped} exchange(s) already known), {q} quarantined")
        if reasons:
            text += f" ({reasons})"
        if self.quarantine_known:
            text += f", {self.quarantine_known} already in quarantine"
        if self.unreadable:
            text += f"; {len(self.unreadable)} file(s) unreadable"
        if self.files and self.files == self.files_skipped:
            text += "; nothing new"
        return text

    def as_dict(self) -> dict:
        """The report as plain values (for run summaries and artifacts)."""
        return {"files": self.files, "files_skipped": self.files_skipped, "lines": self.lines,
                "messages": self.messages, "exchanges_added": self.exchanges_added,
                "exchanges_skipped": self.exchanges_skipped, "quarantined": dict(self.quarantined),
                "quarantine_known": self.quarantine_known, "unreadable": len(self.unreadable)}


def not_in(table: pa.Table, column: str, known: pa.Array) -> pa.Table:
    """Rows of `table` whose `column` value is not in `known`."""
    if table.num_rows == 0 or len(known) == 0:
        return table
    return table.filter(pc.invert(pc.is_in(table[column], value_set=known)))


def new_exchanges(home: Home) -> pa.Table:
    """Exchanges no completed sleep has scored yet (a killed or failed run's are still new: it is resumed)."""
    scored = read_committed(home, "scored_exchanges", columns=["exchange_id"])["exchange_id"]
    return drop_forgotten(not_in(read_table(home, "exchanges"), "exchange_id", scored), "exchange_id",
                          forgotten(home).exchanges)


def inbox_paths(home: Home, cfg: IngestConfig) -> list[Path]:
    """The folders the nightly run ingests from (those that exist)."""
    paths = [home.root / "inbox", *(Path(p).expanduser() for p in cfg.inbox)]
    return [p for p in paths if p.exists()]


@task(name="ingest", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def ingest_task(home: Home, cfg: IngestConfig, run_id: str) -> IngestReport | None:
    """Stage 0: ingest new session files from the inbox (retried on disk errors only)."""
    paths = inbox_paths(home, cfg)
    if not paths or not any(any(p.rglob(cfg.pattern)) for p in paths):
        get_run_logger().info("inbox is empty: nothing to ingest")
        return None
    logger = get_run_logger()
    report = ingest_paths(home, paths, cfg, run_id=run_id, say=logger.warning)
    logger.info(report.line())
    return report


def ingest_paths(home: Home, paths: list[Path], cfg: IngestConfig, run_id: str | None = None,
                 say=lambda _msg: None) -> IngestReport:
    """Ingest session files/folders into the warehouse; validated before anything lands (holds the home's lock)."""
    home.ensure()
    with home_lock(home.root, command_line()):
        return _ingest_paths(home, paths, cfg, run_id, say)


SHOWN_QUARANTINE = 20  # quarantined lines named one per line on the terminal; the rest are counted


def _ingest_paths(home: Home, paths: list[Path], cfg: IngestConfig, run_id: str | None, say) -> IngestReport:
    run_id = run_id or new_run_id()
    started = utcnow()
    files = list_session_files(paths, cfg.pattern)
    if not files:
        raise InputError(f"no {cfg.pattern} files under {', '.join(display_path(p) for p in paths)}")
    report = IngestReport(run_id=run_id, files=len(files))
    seen = set(read_table(home, "ingested_files", columns=["file_sha256"])["file_sha256"].to_pylist())
    parts: list[ParsedFile] = []
    per_file: list[dict] = []
    unreadable: list[tuple] = []
    for i, path in enumerate(files, 1):
        name = display_path(path)
        try:
            sf = read_session_file(path)
        except UnreadableFile as exc:
            # Not marked as ingested: the next ingest reads it again once it can be read.
            unreadable.append((name, "", 0, "unreadable", exc.reason, b""))
            report.unreadable.append(f"{name}:0: unreadable — {exc.reason}")
            continue
        report.input_files.append(name)
        report.input_sha256.append(sf.sha256)
        if sf.sha256 in seen:
            report.files_skipped += 1
            continue
        seen.add(sf.sha256)
        parsed = parse_session_file(sf.data, name, sf.sha256, cfg)
        per_file.append({"file_sha256": sf.sha256, "source_file": name, "size_bytes": len(sf.data),
                         "lines": parsed.lines, "messages": parsed.messages.num_rows})
        parts.append(parsed)
        if i % 100 == 0:
            say(f"read {i}/{len(files)} files")
    batch = merge_parsed(parts)
    report.lines = batch.lines
    # What a person asked to forget is never read again from the same words: a tombstoned message, or a line a
    # purge masked, is left out (the person saying it again in new words is new input).
    gone = forgotten(home)
    batch_messages = drop_forgotten(batch.messages, "message_id", gone.messages)
    batch_messages = batch_messages.filter(pc.not_equal(batch_messages["content"], MASK))
    report.messages = batch_messages.num_rows
    # Growing log files are re-read whole, and a turn may arrive in a later file or batch: pair this batch's
    # messages together with the warehouse's messages of the same turns, then keep only what is new.
    earlier, paired = _earlier_messages(home, batch_messages)
    exchanges, unpaired = pair_exchanges(batch_messages, earlier, paired["message_id"])
    messages = _first_copies(not_in(batch_messages, "message_id", earlier["message_id"]))
    batch_ids = batch_messages["message_id"]
    ours = pc.or_(pc.is_in(exchanges["user_message_id"], value_set=batch_ids),
                  pc.is_in(exchanges["assistant_message_id"], value_set=batch_ids))
    exchanges = exchanges.filter(ours)
    before = exchanges.num_rows
    exchanges = not_in(exchanges, "exchange_id", paired["exchange_id"])
    report.exchanges_skipped = before - exchanges.num_rows
    report.exchanges_added = exchanges.num_rows
    found = pa.concat_tables([quarantine_rows(unreadable), batch.quarantine, unpaired])
    quarantine = _new_quarantine(home, found)
    report.quarantine_known = found.num_rows - quarantine.num_rows
    report.quarantined = Counter(quarantine["reason"].to_pylist())
    all_messages = pa.concat_tables([earlier.select(["message_id", "role"]), messages.select(["message_id", "role"])])
    check(home, run_id, "exchanges", exchanges_frame(exchanges, all_messages), id_column="exchange_id")
    write_table(home, "messages", run_id, messages)
    write_table(home, "exchanges", run_id, exchanges)
    write_table(home, "quarantine", run_id, quarantine)
    # Last: a crash before this line leaves the files un-marked, so the next ingest redoes them and the
    # id and quarantine-key checks above drop what already landed.
    _write_files_table(home, run_id, per_file, exchanges, quarantine)
    record_run(home, run_id, "ingest", started, "completed", input_files=report.input_files,
               input_sha256=report.input_sha256, summary=report.as_dict())
    _say_quarantine(say, run_id, quarantine, report.unreadable)
    return report


def _say_quarantine(say, run_id: str, quarantine: pa.Table, unreadable: list[str]) -> None:
    """One line per newly quarantined line (file:line: reason — detail), an unreadable file every time."""
    for text in unreadable:
        say(f"slowwave: quarantined {text}; it is read again by the next ingest")
    rows = quarantine.filter(pc.not_equal(quarantine["reason"], "unreadable"))
    for r in rows.slice(0, SHOWN_QUARANTINE).select(["source_file", "line_no", "reason", "detail"]).to_pylist():
        detail = r["detail"] if len(r["detail"]) <= 160 else r["detail"][:157] + "..."
        say(f"slowwave: quarantined {r['source_file']}:{r['line_no']}: {r['reason']} — {detail}")
    if rows.num_rows > SHOWN_QUARANTINE:
        say(f"slowwave: ... and {rows.num_rows - SHOWN_QUARANTINE} more quarantined line(s): "
            f"select * from quarantine where run_id = '{run_id}'")


def _first_copies(messages: pa.Table) -> pa.Table:
    """Each message_id once (its first line in file order): the same message in two files is one message."""
    seen: set[str] = set()
    keep = []
    for mid in messages["message_id"].to_pylist():
        keep.append(mid not in seen)
        seen.add(mid)
    return messages.filter(pa.array(keep, pa.bool_())) if not all(keep) else messages


def _warehouse_sql(home: Home, table: str) -> str | None:
    files = table_files(home, table)
    if not files:
        return None
    paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return f"read_parquet([{paths}], hive_partitioning=false)"


def _earlier_messages(home: Home, messages: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The warehouse's messages (with run_id) of the batch's (session, turn)s, and the exchanges they form."""
    msg_cols = [n for n in schema_of("messages").names if n != "run_id"] + ["run_id"]
    earlier = pa.schema([schema_of("messages").field(n) for n in msg_cols]).empty_table()
    paired = pa.schema([("exchange_id", pa.string()), ("message_id", pa.string())]).empty_table()
    msg_src, ex_src = _warehouse_sql(home, "messages"), _warehouse_sql(home, "exchanges")
    if messages.num_rows == 0 or msg_src is None:
        return earlier, paired
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.register("batch", messages.select(["session_id", "turn"]))
    con.execute("CREATE TEMP TABLE k AS SELECT DISTINCT session_id, turn FROM batch")
    cols = ", ".join(f'm."{c}"' for c in msg_cols)
    earlier = con.sql(f"SELECT {cols} FROM {msg_src} m JOIN k ON m.session_id = k.session_id AND m.turn = k.turn"
                      ).to_arrow_table().cast(earlier.schema)
    if ex_src is not None:
        paired = con.sql(f"""
            SELECT e.exchange_id, unnest([e.user_message_id, e.assistant_message_id]) AS message_id
            FROM {ex_src} e JOIN k ON e.session_id = k.session_id AND e.turn = k.turn""").to_arrow_table()
    con.close()
    return earlier, paired


def _new_quarantine(home: Home, rows: pa.Table) -> pa.Table:
    """The rows not quarantined before, keyed by file + line + sha256 of the raw bytes (first of each key kept):
    a re-read grown file or a rerun after a crash adds no row twice."""
    if rows.num_rows == 0:
        return rows
    digests = [hashlib.sha256(b).hexdigest() for b in rows["raw"].to_pylist()]
    keys = list(zip(rows["source_file"].to_pylist(), rows["line_no"].to_pylist(), digests))
    known: set[tuple] = set()
    src = _warehouse_sql(home, "quarantine")
    if src is not None:
        con = duckdb.connect(":memory:")
        con.register("f", pa.table({"source_file": pa.array(sorted({k[0] for k in keys}), pa.string())}))
        known = set(con.sql(f"SELECT q.source_file, q.line_no, sha256(q.raw) FROM {src} q "
                            "SEMI JOIN f ON q.source_file = f.source_file").fetchall())
        con.close()
    keep = []
    for key in keys:
        keep.append(key not in known)
        known.add(key)
    return rows.filter(pa.array(keep, pa.bool_()))


def _write_files_table(home: Home, run_id: str, per_file: list[dict], exchanges: pa.Table,
                       quarantine: pa.Table) -> None:
    ex_counts = Counter(exchanges["file_sha256"].to_pylist())
    q_counts = Counter(quarantine["file_sha256"].to_pylist())
    rows = [{**f, "exchanges": ex_counts[f["file_sha256"]], "quarantined": q_counts[f["file_sha256"]]}
            for f in per_file]
    if rows:
        write_table(home, "ingested_files", run_id, pa.Table.from_pylist(rows))
