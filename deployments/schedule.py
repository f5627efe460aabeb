"""The nightly consolidation schedule: cron in the local time zone, depth decided by `auto`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEPLOYMENT_NAME = "nightly"


class ScheduleConfig(BaseModel):
    """When the nightly sleep runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cron: str = Field("0 3 * * *", description="Cron expression for the nightly sleep (default 03:00).")
    timezone: str | None = Field(None, description="IANA time zone of the cron; None = this machine's local zone.")
    depth: str = Field("auto", description="Sleep depth of scheduled runs: light, deep or auto.")


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
