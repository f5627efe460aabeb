"""`slowwave demo`: the whole pipeline on the bundled sample conversations, in a separate home."""

from __future__ import annotations

import shutil
from pathlib import Path

from storage.home import Home

SAMPLE_SESSIONS = Path(__file__).resolve().parent.parent / "tasks" / "data" / "eval_case" / "sessions"


def demo_home(explicit: Home | None) -> Home:
    """The demo's home: the one given with --home/SLOWWAVE_HOME, else ~/.slowwave-demo (never your real one)."""
    return explicit if explicit is not None else Home.resolve("~/.slowwave-demo")


def run_demo(home: Home, say=print) -> tuple[int, str | None]:
    """Copy the sample sessions into the home's inbox, run one sleep cycle, print what happened; return
    (exit code, why it was cancelled or None)."""
    from flows.prefect_env import prefect_api
    from storage.lock import command_line, home_lock

    home.ensure()
    inbox = home.root / "inbox" / "sample"
    inbox.mkdir(parents=True, exist_ok=True)
    files = sorted(SAMPLE_SESSIONS.glob("*.jsonl"))
    for f in files:
        shutil.copy2(f, inbox / f.name)
    say(f"demo: home {home.root}; {len(files)} bundled sample session(s) copied to {inbox}")
    with home_lock(home.root, command_line()), prefect_api(home, say):
        from flows.progress import shown
        from flows.report import summary_lines
        from flows.sleep import sleep_or_cancelled

        with shown():
            result, cancelled = sleep_or_cancelled(home, "auto")
    if cancelled:
        return 1, cancelled
    print("\n".join("demo: " + line for line in summary_lines(result)))
    print(f"demo: inspect with `slowwave --home {home.root} models` or DuckDB over {home.warehouse}")
    return 0, None
