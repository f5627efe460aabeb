"""Serve the sleep flow on its nightly cron from this process (what `slowwave schedule` runs)."""

from __future__ import annotations

import os
from pathlib import Path

from tasks.depth import ScheduleConfig

DEPLOYMENT_NAME = "nightly"


def local_timezone() -> str:
    """This machine's IANA time zone name ($TZ, /etc/timezone, the /etc/localtime link), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz:
        return tz
    etc = Path("/etc/timezone")
    if etc.exists() and etc.read_text().strip():
        return etc.read_text().strip()
    link = Path("/etc/localtime")
    if link.is_symlink():
        target = str(link.resolve())
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    return "UTC"


def serve_nightly(home_dir: str, cfg: ScheduleConfig) -> None:
    """Serve the sleep flow on its cron from this process until interrupted (no work pool needed)."""
    # Prefect is imported only here, after flows.prefect_env.configure pointed it at this home.
    from prefect.schedules import Cron

    from flows.sleep import sleep_cycle

    tz = cfg.timezone or local_timezone()
    sleep_cycle.serve(
        name=DEPLOYMENT_NAME,
        schedules=[Cron(cfg.cron, timezone=tz)],
        parameters={"home_dir": home_dir, "depth": cfg.depth},
        description=f"slowwave nightly consolidation of {home_dir} ({cfg.cron}, {tz})",
        tags=["slowwave", "nightly"],
    )


def serve_all_tenants(root: str, cfg: ScheduleConfig, deployment: str) -> None:
    """Serve the fan-out over every tenant on its cron and the tenants' sleep deployment it starts runs of,
    both from this process, until interrupted (one machine; a work pool spreads them over several)."""
    from prefect import serve
    from prefect.schedules import Cron

    from flows.fanout import DEPLOYMENT_NAME as FANOUT, nightly
    from flows.sleep import sleep_cycle

    flow_name, _, name = deployment.partition("/")
    if flow_name != sleep_cycle.name or not name:
        raise ValueError(f"[tenants] deployment {deployment!r}: must be '{sleep_cycle.name}/<name>' to be served here")
    tz = cfg.timezone or local_timezone()
    serve(
        nightly.to_deployment(name=FANOUT, schedules=[Cron(cfg.cron, timezone=tz)], parameters={"root_dir": root},
                              description=f"slowwave nightly fan-out over the tenants of {root} ({cfg.cron}, {tz})",
                              tags=["slowwave", "nightly"]),
        sleep_cycle.to_deployment(name=name, description="one tenant's sleep, started by the nightly fan-out",
                                  tags=["slowwave", "tenant"]),
    )
