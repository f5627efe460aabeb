"""Resuming a sleep run that was killed or failed: the next sleep continues it under the same run id.

A sleep writes `runs/<run_id>/plan.json` (depth, settings hash, exchange count) and the ids of the
exchanges it works on before its first stage, and `stages/<stage>.done` after each stage's outputs
have landed. Until the run's `runs` row says completed, its outputs do not count
(`storage.runs.committed_runs`): the next sleep finds the plan, reads the finished stages' outputs
back from the warehouse by run id instead of redoing them, and does the rest. Writes are
content-addressed, so a stage cut off half-way and redone writes the same files again, never a second
copy. A run whose settings changed since, or that failed `sleep.max_attempts` times, is abandoned
(recorded as such) and its exchanges go to a fresh run.

`SleepRun.stage` is the one place that knows this: every stage of the recipe goes through it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from flows.progress import report
from flows.report import SleepSummary, stage_text
from storage.home import Home
from storage.runs import (
    FINAL,
    failed_attempts,
    is_dry_run,
    latest_runs,
    read_plan,
    read_plan_exchanges,
    read_run,
    read_stage_marks,
    record_run,
    utcnow,
    write_plan,
    write_stage_mark,
)
from storage.warehouse import read_table

T = TypeVar("T")


def settings_sha256(settings) -> str:
    """Hash of every setting that shapes a sleep's outputs (schedule and inbox paths do not)."""
    data = settings.model_dump(exclude={"schedule": True, "wake": True, "ingest": {"inbox"}})

    def plain(value):  # sets (word lists) dump in hash-seeded order: sort them
        if isinstance(value, (set, frozenset)):
            return sorted(value, key=repr)
        return str(value)

    return hashlib.sha256(json.dumps(data, sort_keys=True, default=plain).encode()).hexdigest()


@dataclass
class SleepRun:
    """One sleep run: its plan, the stages it finished (in this or an earlier attempt) and their numbers.
    `finished_before` are the stages an earlier attempt had finished when this one started."""

    home: Home
    run_id: str
    requested: str = "auto"
    resumed: bool = False
    depth: str | None = None
    reason: str = ""
    attempts: int = 1
    status: str = "running"
    stages: dict[str, dict] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    marks: dict[str, dict] = field(default_factory=dict)
    finished_before: list[str] = field(default_factory=list)
    current: str = "ingest"

    def stage(self, name: str, run: Callable[[], T], *, restore: Callable[[dict], T] | None = None,
              numbers: Callable[[T], dict] | None = None, keep: Callable[[T], dict] | None = None) -> T:
        """Run one stage of the recipe, or read it back when an earlier attempt finished it (`restore` gets
        what `keep` recorded then). Reports progress, records the stage's numbers in the summary, and marks
        it finished once every output it writes has landed. A stage without `restore` always runs (it is
        idempotent by content: ingest, or training that reuses a saved adapter)."""
        self.current = name
        report(name, "running")
        resumed = restore is not None and name in self.marks
        if resumed:
            result = restore(self.marks[name])
        else:
            result = run()
            if restore is not None:
                facts = keep(result) if keep else {}
                write_stage_mark(self.home, self.run_id, name, facts)
                self.marks[name] = facts
        shown = numbers(result) if numbers else {}
        if numbers:
            self.stages[name] = shown
        report(name, "resumed" if resumed else "done", stage_text(shown))
        return result

    def skip(self, stages, why: str) -> None:
        """Tell the progress view that these stages will not run, and why."""
        for name in stages:
            report(name, "skipped", why)

    def read(self, table: str, *, dreams: bool | None = None) -> pa.Table:
        """This run's rows of `table`; `dreams` True/False keeps only/no rows of method 'dream'."""
        data = read_run(self.home, table, self.run_id)
        if dreams is None or "method" not in data.column_names:
            return data
        is_dream = pc.equal(data["method"], "dream")
        return data.filter(is_dream if dreams else pc.invert(is_dream))

    def plan(self, depth: str, reason: str, exchanges: pa.Table, settings) -> None:
        """Fix what this run works on before its first stage, so that a resumed attempt does the same."""
        write_plan(self.home, self.run_id, exchanges.select(["exchange_id"]), {
            "run_id": self.run_id, "depth": depth, "reason": reason, "exchanges": exchanges.num_rows,
            "settings_sha256": settings_sha256(settings), "created_at": utcnow().isoformat()})
        self.depth, self.reason = depth, reason

    def planned_exchanges(self) -> pa.Table:
        """The exchanges this run's plan names, as rows of the `exchanges` table (one row per id)."""
        ids = read_plan_exchanges(self.home, self.run_id)
        exchanges = read_table(self.home, "exchanges")
        exchanges = exchanges.filter(pc.is_in(exchanges["exchange_id"], value_set=ids))
        # An exchange is written once per ingest that saw it new; keep one row per id.
        seen: set[str] = set()
        keep = [not (e in seen or seen.add(e)) for e in exchanges["exchange_id"].to_pylist()]
        return exchanges.filter(pa.array(keep, pa.bool_()))

    def summary(self) -> SleepSummary:
        """What this run did so far, as the frozen summary the flow returns and records."""
        return SleepSummary(run_id=self.run_id, requested=self.requested, depth=self.depth, reason=self.reason,
                            status=self.status, stages=dict(self.stages),
                            resumed=self.finished_before,
                            model_before=self.models.get("before"), model_after=self.models.get("after"))


def _unfinished(home: Home) -> list[tuple[str, dict, int]]:
    """(run id, plan, failed attempts) of planned sleep runs that never completed, oldest first."""
    status = {r["run_id"]: r["status"] for r in latest_runs(home, kind="sleep")}
    failures = failed_attempts(home)
    out = []
    for run_id, plan in read_plan(home):
        if status.get(run_id) in (*FINAL, "abandoned") or is_dry_run(run_id):
            continue
        out.append((run_id, plan, failures.get(run_id, 0)))
    return out


def start_or_resume(home: Home, settings, new_run_id: str, requested: str, say: Callable[[str], Any]) -> SleepRun:
    """The oldest unfinished sleep run, to be continued, or a fresh run when there is none to continue."""
    current = settings_sha256(settings)
    for run_id, plan, failed in _unfinished(home):
        why = None
        if plan.get("settings_sha256") != current:
            why = "the settings changed since it started"
        elif failed >= settings.sleep.max_attempts:
            why = f"it failed {failed} times"
        if why:
            record_run(home, run_id, "sleep", utcnow(), "abandoned", depth=plan.get("depth"),
                       summary={"reason": why})
            say(f"abandoning unfinished run {run_id}: {why}; its exchanges go to a fresh run")
            continue
        marks = read_stage_marks(home, run_id)
        run = SleepRun(home, run_id, requested=requested, resumed=True, depth=plan["depth"],
                       reason=f"resumed: {plan.get('reason', '')}", attempts=failed + 2, marks=marks,
                       finished_before=sorted(marks))
        say(f"resuming run {run_id} (attempt {run.attempts}; finished before: {', '.join(run.finished_before) or 'none'})")
        return run
    return SleepRun(home, new_run_id, requested=requested)
