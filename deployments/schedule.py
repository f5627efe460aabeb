"""The nightly consolidation served from this process: `python -m deployments.schedule [HOME]`.

The same as `slowwave schedule`; deployments/prefect.yaml is the work-pool alternative. Cron, time
zone and depth come from the `[schedule]` section of the home's config.toml (tasks.depth.ScheduleConfig).
"""

from __future__ import annotations

import sys

from flows.config import load_settings
from flows.nightly import DEPLOYMENT_NAME, local_timezone, serve_nightly
from flows.prefect_env import configure
from storage.errors import SlowwaveError
from storage.home import Home
from tasks.depth import ScheduleConfig

__all__ = ["DEPLOYMENT_NAME", "ScheduleConfig", "local_timezone", "main", "serve_nightly"]


def main(argv: list[str] | None = None) -> int:
    """Serve the nightly sleep of HOME (default: $SLOWWAVE_HOME or ~/.slowwave) until interrupted."""
    args = sys.argv[1:] if argv is None else argv
    try:
        home = Home.resolve(args[0] if args else None)
        cfg = load_settings(home.config_file).schedule
    except SlowwaveError as exc:
        print(f"deployments.schedule: error: {exc}", file=sys.stderr)
        return 1
    configure(home)
    serve_nightly(str(home.root), cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
