"""The `runs` table: one row per ingest, sleep or eval run, written when the run ends."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from storage.atomic import atomic_path, write_text_atomic
from storage.home import Home
from storage.schemas import SCHEMAS
from storage.warehouse import read_table, table_files, write_table


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
DRY_RUN_PREFIX = "dry-"  # `slowwave sleep --dry-run`: its rows never count, and it is never resumed


def is_dry_run(run_id: str) -> bool:
    """True for the run id of a dry run (a preview: ingest through mixing, nothing trained or promoted)."""
    return run_id.startswith(DRY_RUN_PREFIX)


COMMITTING = ("sleep", "rebuild")  # the kinds of run whose finished outputs count (a rebuild is a forget's night)


def committed_runs(home: Home, kinds: tuple[str, ...] = COMMITTING) -> set[str]:
    """Run ids whose latest status is final: their outputs count (a killed or failed run's do not, yet)."""
    return {r["run_id"] for r in latest_runs(home) if r["kind"] in kinds and r["status"] in FINAL
            and not is_dry_run(r["run_id"])}


def read_run(home: Home, table: str, run_id: str, columns: list[str] | None = None) -> pa.Table:
    """One run's rows of `table`, whether or not the run has committed (a resumed run reads its own)."""
    return read_table(home, table, run_ids=[run_id], columns=columns)


def read_committed(home: Home, table: str, columns: list[str] | None = None) -> pa.Table:
    """The rows of `table` written by sleep runs that completed: a killed or failed run's rows do not count."""
    return read_table(home, table, run_ids=sorted(committed_runs(home)), columns=columns)


def latest_committed(home: Home, table: str) -> pa.Table:
    """The rows of `table` from the newest completed sleep run that wrote any (empty before the first)."""
    runs = {f.parent.name.removeprefix("run_id=") for f in table_files(home, table)} & committed_runs(home)
    return read_table(home, table, run_ids=[max(runs)] if runs else [])


def failed_attempts(home: Home) -> dict[str, int]:
    """How many attempts of each sleep run ended without finishing: failed, or killed (an attempt writes a
    `running` row when it starts and no row when it is SIGKILLed). Cancelled attempts (a signal asked them to
    stop) do not count: they are resumed like the others, but were never at fault."""
    counts: dict[str, dict[str, int]] = {}
    for r in read_table(home, "runs", columns=["run_id", "kind", "status"]).to_pylist():
        if r["kind"] == "sleep":
            per = counts.setdefault(r["run_id"], {})
            per[r["status"]] = per.get(r["status"], 0) + 1
    out = {}
    for run_id, per in counts.items():
        ended_badly = per.get("running", 0) - per.get("cancelled", 0) - sum(per.get(s, 0) for s in FINAL)
        out[run_id] = max(per.get("failed", 0), ended_badly)
    return {k: v for k, v in out.items() if v}


# A sleep run's working files under runs/<run_id>/: the plan (what it works on) and one mark per finished stage.
PLAN = "plan.json"
PLAN_EXCHANGES = "plan-exchanges.parquet"
STAGES_DIR = "stages"


def write_plan(home: Home, run_id: str, exchange_ids: pa.Table, plan: dict) -> None:
    """Record a run's plan: the exchange ids first, then plan.json (its presence means the plan is whole)."""
    folder = home.runs / run_id
    with atomic_path(folder / PLAN_EXCHANGES) as tmp:
        pq.write_table(exchange_ids, tmp)
    write_text_atomic(folder / PLAN, json.dumps(plan, indent=1))


def read_plan(home: Home) -> list[tuple[str, dict]]:
    """(run id, plan) of every run that wrote a plan, oldest run id first."""
    return [(f.parent.name, json.loads(f.read_text())) for f in sorted(home.runs.glob(f"*/{PLAN}"))]


def read_plan_exchanges(home: Home, run_id: str) -> pa.Array:
    """The exchange ids a run's plan names."""
    return pq.read_table(home.runs / run_id / PLAN_EXCHANGES)["exchange_id"].combine_chunks()


def write_stage_mark(home: Home, run_id: str, stage: str, facts: dict) -> None:
    """Mark a run's stage finished (every output it writes has landed), with the facts a resume needs."""
    write_text_atomic(home.runs / run_id / STAGES_DIR / f"{stage}.done",
                      json.dumps({"finished_at": utcnow().isoformat(), **facts}))


def read_stage_marks(home: Home, run_id: str) -> dict[str, dict]:
    """Stage name -> the facts its mark recorded, for every stage the run finished."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((home.runs / run_id / STAGES_DIR).glob("*.done"))}
