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
