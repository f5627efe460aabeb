"""Resuming a sleep run that was killed or failed: the next sleep continues it under the same run id.

A sleep writes `runs/<run_id>/plan.json` (depth, settings hash, exchange count) and
`plan-exchanges.parquet` (the exchanges it works on) before its first stage, and
`stages/<stage>.done` after each stage's outputs have landed. Until the run's `runs` row says
completed, its outputs do not count (`storage.runs.committed_runs`): the next sleep finds the plan,
reads the finished stages' outputs back from the warehouse by run id instead of redoing them, and
does the rest. Writes are content-addressed, so a stage cut off half-way and redone writes the same
files again, never a second copy. A run whose settings changed since, or that failed
`max_attempts` times, is abandoned (recorded as such) and its exchanges go to a fresh run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.atomic import atomic_path, write_text_atomic
from storage.home import Home
from storage.runs import FINAL, latest_runs, record_run, utcnow
from storage.warehouse import read_table

PLAN = "plan.json"
PLAN_EXCHANGES = "plan-exchanges.parquet"
MAX_ATTEMPTS = 3


def settings_sha256(settings) -> str:
    """Hash of every setting that shapes a sleep's outputs (schedule and inbox paths do not)."""
    data = settings.model_dump(exclude={"schedule": True, "ingest": {"inbox"}})

    def plain(value):  # sets (word lists) dump in hash-seeded order: sort them
        if isinstance(value, (set, frozenset)):
            return sorted(value, key=repr)
        return str(value)

    return hashlib.sha256(json.dumps(data, sort_keys=True, default=plain).encode()).hexdigest()


@dataclass
class SleepRun:
    """One sleep run's plan and its finished stages."""

    home: Home
    run_id: str
    resumed: bool = False
    depth: str | None = None
    reason: str = ""
    attempts: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.home.runs / self.run_id

    def done(self, stage: str) -> bool:
        """True when this run's `stage` finished in an earlier attempt (its outputs are in the warehouse)."""
        return (self.folder / "stages" / f"{stage}.done").exists()

    def mark(self, stage: str, **facts) -> None:
        """Record that `stage` finished (every output it writes has landed), with any facts to reuse."""
        write_text_atomic(self.folder / "stages" / f"{stage}.done",
                          json.dumps({"finished_at": utcnow().isoformat(), **facts}))

    def facts(self, stage: str) -> dict:
        """What `mark` recorded for a finished stage."""
        return json.loads((self.folder / "stages" / f"{stage}.done").read_text())

    def finished_stages(self) -> list[str]:
        return sorted(p.stem for p in (self.folder / "stages").glob("*.done"))

    def read(self, table: str, *, dreams: bool | None = None) -> pa.Table:
        """This run's rows of `table`; `dreams` True/False keeps only/no rows of method 'dream'."""
        data = read_table(self.home, table, run_ids=[self.run_id])
        if dreams is None or "method" not in data.column_names:
            return data
        is_dream = pc.equal(data["method"], "dream")
        return data.filter(is_dream if dreams else pc.invert(is_dream))

    def write_plan(self, depth: str, reason: str, exchanges: pa.Table, settings) -> None:
        """Fix what this run works on before its first stage, so that a resumed attempt does the same."""
        with atomic_path(self.folder / PLAN_EXCHANGES) as tmp:
            pq.write_table(exchanges.select(["exchange_id"]), tmp)
        write_text_atomic(self.folder / PLAN, json.dumps({
            "run_id": self.run_id, "depth": depth, "reason": reason, "exchanges": exchanges.num_rows,
            "settings_sha256": settings_sha256(settings), "created_at": utcnow().isoformat()}, indent=1))
        self.depth, self.reason = depth, reason

    def planned_exchanges(self) -> pa.Table:
        """The exchanges this run's plan names, as rows of the `exchanges` table."""
        ids = pq.read_table(self.folder / PLAN_EXCHANGES)["exchange_id"]
        exchanges = read_table(self.home, "exchanges")
        exchanges = exchanges.filter(pc.is_in(exchanges["exchange_id"], value_set=ids))
        # An exchange is written once per ingest that saw it new; keep one row per id.
        seen: set[str] = set()
        keep = [not (e in seen or seen.add(e)) for e in exchanges["exchange_id"].to_pylist()]
        return exchanges.filter(pa.array(keep, pa.bool_()))


def _unfinished(home: Home) -> list[tuple[str, dict, int]]:
    """(run id, plan, failed attempts) of planned sleep runs that never completed, oldest first."""
    status = {r["run_id"]: r["status"] for r in latest_runs(home, kind="sleep")}
    failures: dict[str, int] = {}
    for r in read_table(home, "runs", columns=["run_id", "status"]).to_pylist():
        if r["status"] == "failed":
            failures[r["run_id"]] = failures.get(r["run_id"], 0) + 1
    out = []
    for plan_file in sorted(home.runs.glob(f"*/{PLAN}")):
        run_id = plan_file.parent.name
        if status.get(run_id) in (*FINAL, "abandoned"):
            continue
        out.append((run_id, json.loads(plan_file.read_text()), failures.get(run_id, 0)))
    return out


def start_or_resume(home: Home, settings, new_run_id: str, say) -> SleepRun:
    """The oldest unfinished sleep run, to be continued, or a fresh run when there is none to continue."""
    current = settings_sha256(settings)
    for run_id, plan, failed in _unfinished(home):
        why = None
        if plan.get("settings_sha256") != current:
            why = "the settings changed since it started"
        elif failed >= MAX_ATTEMPTS:
            why = f"it failed {failed} times"
        if why:
            record_run(home, run_id, "sleep", utcnow(), "abandoned", depth=plan.get("depth"),
                       summary={"reason": why})
            say(f"abandoning unfinished run {run_id}: {why}; its exchanges go to a fresh run")
            continue
        run = SleepRun(home, run_id, resumed=True, depth=plan["depth"], reason=plan.get("reason", ""),
                       attempts=failed + 2)
        stages = run.finished_stages()
        say(f"resuming run {run_id} (attempt {run.attempts}; finished before: {', '.join(stages) or 'none'})")
        return run
    return SleepRun(home, new_run_id)
