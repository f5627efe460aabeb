"""The `runs` table: one row per ingest, sleep or eval run, written when the run ends."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa

from storage.home import Home
from storage.schemas import SCHEMAS
from storage.warehouse import read_table, write_table


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def record_run(home: Home, run_id: str, kind: str, started_at: datetime, status: str, *,
               flow_run_id: str | None = None, depth: str | None = None,
               input_files: list[str] | None = None, input_sha256: list[str] | None = None,
               summary: dict | None = None, finished_at: datetime | None = None) -> None:
    """Append the run's row (each status change is a new immutable row; the latest wins)."""
    row = {
        "run_id": [run_id], "kind": [kind], "flow_run_id": [flow_run_id],
        "started_at": [started_at], "finished_at": [finished_at or utcnow()], "status": [status],
        "depth": [depth], "input_files": [input_files or []], "input_sha256": [input_sha256 or []],
        "summary_json": [json.dumps(summary, default=str) if summary is not None else None],
    }
    write_table(home, "runs", run_id, pa.Table.from_pydict(row, schema=SCHEMAS["runs"]))


def latest_runs(home: Home, kind: str | None = None) -> list[dict]:
    """Runs, newest first, one row per run id (its latest status)."""
    rows = read_table(home, "runs").to_pylist()
    latest: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["finished_at"] or r["started_at"]):
        latest[r["run_id"]] = r
    out = [r for r in latest.values() if kind is None or r["kind"] == kind]
    return sorted(out, key=lambda r: r["started_at"], reverse=True)


FINAL = ("completed", "nothing-to-do")  # a sleep run in one of these states has committed its outputs


def committed_runs(home: Home, kind: str = "sleep") -> set[str]:
    """Run ids whose latest status is final: their outputs count (a killed or failed run's do not, yet)."""
    return {r["run_id"] for r in latest_runs(home, kind=kind) if r["status"] in FINAL}
