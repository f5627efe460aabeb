"""Ingest recipe: read session files, parse, pair, validate, then persist (stage 0)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

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
from storage.inbox import list_session_files, read_session_file
from storage.runs import read_committed, record_run, utcnow
from storage.warehouse import read_table, write_table
from tasks.ingest import (
    IngestConfig,
    ParsedFile,
    merge_parsed,
    pair_exchanges,
    parse_session_file,
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
    quarantined: Counter = field(default_factory=Counter)
    input_files: list[str] = field(default_factory=list)
    input_sha256: list[str] = field(default_factory=list)

    @property
    def nothing_readable(self) -> bool:
        """True when files were given but not one message could be read from them."""
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
        if self.files and self.files == self.files_skipped:
            text += "; nothing new"
        return text

    def as_dict(self) -> dict:
        """The report as plain values (for run summaries and artifacts)."""
        return {"files": self.files, "files_skipped": self.files_skipped, "lines": self.lines,
                "messages": self.messages, "exchanges_added": self.exchanges_added,
                "exchanges_skipped": self.exchanges_skipped, "quarantined": dict(self.quarantined)}


def not_in(table: pa.Table, column: str, known: pa.Array) -> pa.Table:
    """Rows of `table` whose `column` value is not in `known`."""
    if table.num_rows == 0 or len(known) == 0:
        return table
    return table.filter(pc.invert(pc.is_in(table[column], value_set=known)))


def new_exchanges(home: Home) -> pa.Table:
    """Exchanges no completed sleep has scored yet (a killed or failed run's are still new: it is resumed)."""
    scored = read_committed(home, "scored_exchanges", columns=["exchange_id"])["exchange_id"]
    return not_in(read_table(home, "exchanges"), "exchange_id", scored)


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
    report = ingest_paths(home, paths, cfg, run_id=run_id)
    get_run_logger().info(report.line())
    return report


def ingest_paths(home: Home, paths: list[Path], cfg: IngestConfig, run_id: str | None = None,
                 say=lambda _msg: None) -> IngestReport:
    """Ingest session files/folders into the warehouse; validated before anything lands (holds the home's lock)."""
    home.ensure()
    with home_lock(home.root, command_line()):
        return _ingest_paths(home, paths, cfg, run_id, say)


def _ingest_paths(home: Home, paths: list[Path], cfg: IngestConfig, run_id: str | None, say) -> IngestReport:
    run_id = run_id or new_run_id()
    started = utcnow()
    files = list_session_files(paths, cfg.pattern)
    if not files:
        raise InputError(f"no {cfg.pattern} files under {', '.join(str(p) for p in paths)}")
    report = IngestReport(run_id=run_id, files=len(files))
    seen = set(read_table(home, "ingested_files", columns=["file_sha256"])["file_sha256"].to_pylist())
    parts: list[ParsedFile] = []
    per_file: list[dict] = []
    for i, path in enumerate(files, 1):
        sf = read_session_file(path)
        report.input_files.append(str(path))
        report.input_sha256.append(sf.sha256)
        if sf.sha256 in seen:
            report.files_skipped += 1
            continue
        seen.add(sf.sha256)
        parsed = parse_session_file(sf.data, str(path), sf.sha256, cfg)
        per_file.append({"file_sha256": sf.sha256, "source_file": str(path), "size_bytes": len(sf.data),
                         "lines": parsed.lines, "messages": parsed.messages.num_rows})
        parts.append(parsed)
        if i % 100 == 0:
            say(f"read {i}/{len(files)} files")
    batch = merge_parsed(parts)
    report.lines = batch.lines
    messages = batch.messages
    report.messages = messages.num_rows
    exchanges, unpaired = pair_exchanges(messages)
    quarantine = pa.concat_tables([batch.quarantine, unpaired])
    # Growing log files are re-read whole: keep only what the warehouse does not hold yet.
    messages = not_in(messages, "message_id", read_table(home, "messages", columns=["message_id"])["message_id"])
    before = exchanges.num_rows
    exchanges = not_in(exchanges, "exchange_id", read_table(home, "exchanges", columns=["exchange_id"])["exchange_id"])
    report.exchanges_skipped = before - exchanges.num_rows
    report.exchanges_added = exchanges.num_rows
    report.quarantined = Counter(quarantine["reason"].to_pylist())
    all_messages = pa.concat_tables([read_table(home, "messages", columns=["message_id", "role"]),
                                     messages.select(["message_id", "role"])])
    check(home, run_id, "exchanges", exchanges_frame(exchanges, all_messages), id_column="exchange_id")
    write_table(home, "messages", run_id, messages)
    write_table(home, "exchanges", run_id, exchanges)
    write_table(home, "quarantine", run_id, quarantine)
    # Last: a crash before this line leaves the files un-marked, so the next ingest redoes them
    # and the id checks above drop what already landed.
    _write_files_table(home, run_id, per_file, exchanges, quarantine)
    record_run(home, run_id, "ingest", started, "completed", input_files=report.input_files,
               input_sha256=report.input_sha256, summary=report.as_dict())
    return report


def _write_files_table(home: Home, run_id: str, per_file: list[dict], exchanges: pa.Table,
                       quarantine: pa.Table) -> None:
    ex_counts = Counter(exchanges["file_sha256"].to_pylist())
    q_counts = Counter(quarantine["file_sha256"].to_pylist())
    rows = [{**f, "exchanges": ex_counts[f["file_sha256"]], "quarantined": q_counts[f["file_sha256"]]}
            for f in per_file]
    if rows:
        write_table(home, "ingested_files", run_id, pa.Table.from_pylist(rows))
