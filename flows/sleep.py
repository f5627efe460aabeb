"""The sleep cycle: one Prefect flow run, one task per stage, an expectation suite after each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.config import Settings
from flows.ingest import IngestReport, ingest_paths
from storage.home import Home
from storage.ids import new_run_id
from storage.runs import record_run, utcnow


@dataclass
class SleepReport:
    """What one sleep cycle did, stage by stage."""

    run_id: str
    depth: str
    status: str = "running"
    stages: dict[str, dict] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [f"sleep {self.depth} run {self.run_id}: {self.status}"]
        for stage, numbers in self.stages.items():
            out.append(f"  {stage}: " + ", ".join(f"{k} {v}" for k, v in numbers.items()))
        return out


def inbox_paths(home: Home, settings: Settings) -> list[Path]:
    """The folders the nightly run ingests from (those that exist)."""
    paths = [home.root / "inbox", *(Path(p).expanduser() for p in settings.ingest.inbox)]
    return [p for p in paths if p.exists()]


@task(name="ingest", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest_task(home: Home, settings: Settings, run_id: str) -> IngestReport | None:
    """Stage 0: ingest new session files from the inbox (retried: it is disk I/O)."""
    paths = inbox_paths(home, settings)
    if not paths or not any(p.rglob(settings.ingest.pattern) for p in paths):
        get_run_logger().info("inbox is empty: nothing to ingest")
        return None
    report = ingest_paths(home, paths, settings.ingest, run_id=run_id)
    get_run_logger().info(report.line())
    return report


def _flow_run_name() -> str:
    params = flow_run.parameters
    return f"sleep-{params.get('depth', 'auto')}-{datetime.now().strftime('%Y-%m-%d')}"


@flow(name="sleep-cycle", flow_run_name=_flow_run_name, log_prints=True)
def sleep_cycle(home_dir: str, depth: str = "auto") -> dict:
    """Run one sleep cycle over the home's new conversations; return the report as a dict."""
    from flows.config import load_settings

    home = Home.resolve(home_dir).ensure()
    settings = load_settings(home.config_file)
    run_id = new_run_id()
    started = utcnow()
    report = SleepReport(run_id=run_id, depth=depth)
    try:
        ingested = ingest_task(home, settings, run_id)
        report.stages["ingest"] = ingested.as_dict() if ingested else {"files": 0}
        report.status = "completed"
    except BaseException:
        report.status = "failed"
        raise
    finally:
        record_run(home, run_id, "sleep", started, report.status, depth=depth,
                   flow_run_id=str(flow_run.id) if flow_run.id else None, summary=report.stages)
    return {"run_id": run_id, "depth": depth, "status": report.status, "stages": report.stages}
