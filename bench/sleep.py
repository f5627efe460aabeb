"""One light sleep of the demo, timed per stage on a fresh home: ingest of the bundled sample conversations to v0001.

    python bench/sleep.py [--keep DIR]

What `make demo` does, in a temporary home (or --keep DIR): the model is pulled first (not timed: a
one-time conversion), then `sleep_cycle` runs with Prefect's test harness as the tests use it. Each stage's
seconds come from the run's own stage marks (storage/runs.py), so they are the pipeline's, not this
script's. Target: ingest to v0001 within 120 s on this machine; the gate within 20% of the sleep's wall.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.model.blas import ensure_fast_blas  # noqa: E402

ensure_fast_blas()

TARGET_SECONDS = 120.0


def main() -> int:
    from prefect.testing.utilities import prefect_test_harness

    from flows.demo import SAMPLE_SESSIONS
    from flows.prefect_env import configure
    from storage.home import Home
    from storage.runs import read_stage_marks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, default=None, help="home folder to use and keep (default: a temp one)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="slowwave-bench-sleep-"))
    home = Home(root).ensure()
    configure(home)
    from flows.cli import main as cli

    tic = time.perf_counter()
    cli(["--home", str(root), "model", "pull"])
    pull_s = time.perf_counter() - tic
    inbox = root / "inbox" / "sample"
    inbox.mkdir(parents=True, exist_ok=True)
    for f in sorted(SAMPLE_SESSIONS.glob("*.jsonl")):
        shutil.copy2(f, inbox / f.name)
    from flows.sleep import sleep_cycle

    load_before = os.getloadavg()
    with prefect_test_harness():
        started = datetime.now().astimezone()
        tic = time.perf_counter()
        summary = sleep_cycle(home_dir=str(root), depth="light")
        wall = time.perf_counter() - tic
    load_after = os.getloadavg()
    runs = sorted((root / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    marks = read_stage_marks(home, runs[-1].name)
    ordered = sorted(marks.items(), key=lambda kv: kv[1]["finished_at"])
    print(f"home {root}; model pull {pull_s:.1f} s (once, not counted); load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    previous = started
    seconds = {}
    for stage, facts in ordered:
        at = datetime.fromisoformat(facts["finished_at"])
        if at.tzinfo is None:
            at = at.astimezone()
        seconds[stage] = (at - previous).total_seconds()
        previous = at
        print(f"  {stage:14s} {seconds[stage]:7.1f} s")
    print(f"  {'(after stages)':14s} {wall - sum(seconds.values()):7.1f} s (flow start/end, summary)")
    gate = seconds.get("gate", 0.0)
    print(f"sleep wall {wall:.1f} s (target <= {TARGET_SECONDS:.0f} s: {'met' if wall <= TARGET_SECONDS else 'NOT met'}); "
          f"gate {gate:.1f} s = {gate / wall:.0%} of the wall (target <= 20%); result: {summary.model_dump_json()[:300]}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
