"""`slowwave lineage`: run one lineage query and write it as a readable table, CSV, JSON or Parquet."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from storage import lineage, registry
from storage.atomic import write_text_atomic
from storage.catalog import connect
from storage.errors import LineageError
from storage.home import Home
from storage.warehouse import export_parquet

FORMATS = ("table", "csv", "json", "parquet")
TEXT_WIDTH = 48  # longest cell of a table column before it is cut with "…"
FIELD_WIDTH = 160  # longest value of a record's field line
TABLE_ROWS = 500  # rows a readable table shows; the other formats carry every row

# Which columns the readable table shows (every format but `table` carries all of them).
LIST_COLUMNS = {
    "model": ["version", "run_id", "pair_id", "sources", "examples", "question", "answer"],
    "search": ["pair_id", "status", "reason", "question", "answer", "source_file", "line", "training_runs",
               "examples", "versions"],
}
SECTION_COLUMNS = {
    "sources": ["exchange_id", "session_id", "turn", "source_file", "line", "user_text", "novelty", "importance",
                "utility", "combined", "retained"],
    "training": ["run_id", "run_status", "sources", "examples", "adapter_id", "approved", "benchmark_ratio", "ppl_drift",
                 "recall_pre", "recall_post", "reasons", "fused_into"],
    "pairs": ["pair_id", "status", "reason", "question", "answer", "grounding", "training_runs", "examples",
              "versions"],
}
TAIL_COLUMNS = {"source_file"}  # paths: the end of the path is the part worth keeping


def jsonable(value):
    """A JSON-ready value: timestamps as ISO-8601 text, nested values kept."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def _cell(value, width: int, tail: bool = False) -> str:
    """One table cell: short, on one line, cut with "…" when longer than `width`."""
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.3f}"
    elif isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, list):
        text = ", ".join(_cell(v, width) for v in value) or "-"
    elif isinstance(value, dict):
        text = json.dumps(jsonable(value), ensure_ascii=False)
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > width:
        text = "…" + text[-(width - 1):] if tail else text[:width - 1] + "…"
    return text


def text_table(rows: list[dict], columns: list[str], indent: str = "") -> list[str]:
    """Rows as aligned text columns under a header."""
    cells = [[_cell(r.get(c), TEXT_WIDTH, c in TAIL_COLUMNS) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += [indent + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return lines


def _is_section(field: pa.Field) -> bool:
    return pa.types.is_list(field.type) and pa.types.is_struct(field.type.value_type)


def render_record(table: pa.Table, title: str) -> str:
    """A one-row result as `field: value` lines, then each nested section as its own table."""
    row = table.to_pylist()[0]
    sections = [f.name for f in table.schema if _is_section(f)]
    lines = [title]
    width = max(len(k) for k in row if k not in sections)
    for key, value in row.items():
        if key not in sections:
            lines.append(f"  {key.ljust(width)}  {_cell(value, FIELD_WIDTH, key in TAIL_COLUMNS)}")
    for name in sections:
        items = row[name]
        lines.append(f"{name} ({len(items)})")
        if items:
            columns = [c for c in SECTION_COLUMNS.get(name, list(items[0])) if c in items[0]]
            lines += text_table(items, columns, indent="  ")
    return "\n".join(lines) + "\n"


def render_list(table: pa.Table, kind: str, title: str, summary: pa.Table | None = None) -> str:
    """A many-row result as a text table (a model version's per-run summary first), cut at TABLE_ROWS rows."""
    lines = [title]
    if summary is not None and summary.num_rows:
        lines += ["runs"] + text_table(summary.to_pylist(), summary.column_names, indent="  ") + ["pairs"]
    if table.num_rows:
        columns = [c for c in LIST_COLUMNS[kind] if c in table.column_names]
        shown = table.slice(0, TABLE_ROWS).select(columns).to_pylist()
        lines += text_table(shown, columns, indent="  " if summary is not None else "")
    if table.num_rows > TABLE_ROWS:
        lines.append(f"… {table.num_rows - TABLE_ROWS:,} more row(s): --format csv, json or parquet gives them all")
    return "\n".join(lines) + "\n"


def _flat(table: pa.Table) -> pa.Table:
    """`table` with every nested column (lists, sections) as its JSON text, rows in the same order."""
    nested = [f.name for f in table.schema if pa.types.is_nested(f.type)]
    if not nested:
        return table
    con = duckdb.connect(":memory:")
    try:
        con.register("_t", table)
        cols = ", ".join(f'to_json("{n}")::VARCHAR AS "{n}"' if n in nested else f'"{n}"' for n in table.column_names)
        return con.sql(f"SELECT {cols} FROM _t").to_arrow_table()
    finally:
        con.close()


def to_csv(table: pa.Table) -> str:
    """CSV with a header; nested values (lists, sections) as JSON text in their cell, nulls empty."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(_flat(table), sink)
    return sink.getvalue().to_pybytes().decode("utf-8")


def to_json(table: pa.Table, record: bool) -> str:
    """JSON: one object for a one-row record, else an array of objects, one per line."""
    if record:
        return json.dumps(jsonable(table.to_pylist()[0]), ensure_ascii=False, indent=2) + "\n"
    con = duckdb.connect(":memory:")  # serializing in DuckDB: large results would take seconds in Python
    try:
        con.register("_t", table)
        rows = [r[0] for r in con.sql("SELECT to_json(_t)::VARCHAR FROM _t").fetchall()]
    finally:
        con.close()
    return "[\n" + ",\n".join(rows) + ("\n]\n" if rows else "]\n")


def _query(home: Home, pair, model, exchange, search, mask) -> tuple[pa.Table, str, str, pa.Table | None]:
    """(result, kind, title, per-run summary) for the one query asked for; a person's words go through mask."""
    kind = "model" if model is not None else "exchange" if exchange is not None else \
        "search" if search is not None else "pair"
    con = connect(home, lineage.NEEDS[kind])
    try:
        if kind == "model":
            if model == "current":
                model = registry.current_name(home) or model
            rows = lineage.model_lineage(con, model)
            summary = lineage.run_counts(rows)
            title = (f"model {model}: {len(set(rows['pair_id'].to_pylist()))} pair(s) from {summary.num_rows} "
                     f"training run(s) in its ancestry")
            return rows, kind, title, summary
        if kind == "exchange":
            rows = lineage.exchange_lineage(con, exchange, mask)
            return rows, kind, f"exchange {rows['exchange_id'][0]}", None
        if kind == "search":
            rows = lineage.search_pairs(con, search)
            return rows, kind, f"{rows.num_rows} pair(s) match {search!r}", None
        rows = lineage.pair_lineage(con, pair, mask)
        return rows, kind, f"pair {rows['pair_id'][0]} ({rows['status'][0]})", None
    finally:
        con.close()


def forgotten_note(home: Home, ref: str) -> str | None:
    """'<pair>: forgotten by request <id> at <time> (<state>)' when `ref` (an id or a prefix) names exactly one
    forgotten pair; None otherwise."""
    from storage.forget import requests
    from storage.warehouse import read_table

    ref = ref.strip()
    want = ref if ref.startswith("pr_") else "pr_" + ref
    rows = [r for r in read_table(home, "forgotten").to_pylist() if r["kind"] == "pair" and r["item_id"].startswith(want)]
    if len({r["item_id"] for r in rows}) != 1:
        return None
    r = rows[0]
    state = requests(home).get(r["request_id"], {}).get("status", "requested")
    words = "its words were erased" if state == "purged" else "its words are kept until the purge"
    return (f"{r['item_id']}: forgotten by request {r['request_id']} at {r['at'].isoformat(timespec='seconds')} "
            f"({state}; {words})")


def lineage_report(home: Home, *, pair: str | None = None, model: str | None = None, exchange: str | None = None,
                   search: str | None = None, fmt: str = "table", out: str | None = None, firewall=None) -> str:
    """Run the query and return what to print: the result, or a line saying which file holds it. Every secret
    the firewall (`firewall`, else the home's settings) finds anywhere in a person's words is masked."""
    if fmt not in FORMATS:
        raise LineageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "parquet" and not out:
        raise LineageError("--format parquet writes a file: add --out FILE")
    from flows.config import load_settings
    from tasks.firewall import masker

    mask = masker(firewall or load_settings(home.config_file).firewall)
    note = forgotten_note(home, pair) if pair else None
    try:
        rows, kind, title, summary = _query(home, pair, model, exchange, search, mask)
    except LineageError:
        if note is None:
            raise
        return note + "\n"  # purged: its words are gone, the tombstone says what happened
    if note and fmt == "table" and not out:
        return note + "\n" + render_record(rows, title)
    record = kind in ("pair", "exchange")
    if fmt == "parquet":
        export_parquet(rows, Path(out))
        return f"wrote {rows.num_rows} row(s) to {out}\n"
    if fmt == "csv":
        text = to_csv(rows)
    elif fmt == "json":
        text = to_json(rows, record)
    else:
        text = render_record(rows, title) if record else render_list(rows, kind, title, summary)
    if out:
        write_text_atomic(Path(out), text)
        return f"wrote {rows.num_rows} row(s) to {out}\n"
    return text
