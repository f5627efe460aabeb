"""`slowwave sleep --dry-run`: ingest through mixing, a printed preview, nothing trained or promoted, and
nothing a later sleep counts or resumes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.config import Settings
from flows.ingest import new_exchanges
from flows.resume import start_or_resume
from storage import registry
from storage.home import Home
from storage.runs import committed_runs, latest_runs, read_run
from tasks.firewall import MASK_MARK

REPO = Path(__file__).resolve().parents[1]
SECRET = "Vq7#pLm2!xZr9"  # synthetic


def _session(path: Path) -> None:
    lines = [("user", f"I work as a pilot. My password is {SECRET}"), ("assistant", "Noted."),
             ("user", "My sister Karin lives in Tromsø."), ("assistant", "Lovely place.")]
    path.write_text("".join(json.dumps({"timestamp": f"2026-12-01T10:0{i}:00+00:00", "session_id": "dry1",
                                        "turn": i // 2, "role": role, "content": text}) + "\n"
                            for i, (role, text) in enumerate(lines)))


@pytest.mark.model
def test_a_dry_run_previews_the_night_and_leaves_everything_as_it_was(tmp_path, fixture_sessions,
                                                                     converted_model_dir):
    home = Home(tmp_path / "h").ensure()
    shutil.copytree(fixture_sessions, home.root / "inbox" / "logs")
    _session(home.root / "inbox" / "dry1.jsonl")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    out = subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home.root), "sleep", "--dry-run"],
                         capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert SECRET not in out.stdout + out.stderr  # the preview masks it, and so does every log line
    runs = latest_runs(home, kind="sleep")
    assert [r["status"] for r in runs] == ["dry-run"]
    run_id = runs[0]["run_id"]
    assert run_id.startswith("dry-")
    pairs = read_run(home, "pairs", run_id)
    learn = [line for line in out.stdout.splitlines() if line.startswith("  learn ")]
    assert pairs.num_rows > 0 and len(learn) == pairs.num_rows
    assert any("Tromsø" in line and "dry1:1" in line for line in learn), learn
    rejected = [line for line in out.stdout.splitlines() if line.startswith("rejected: ")]
    assert rejected and "secret" in rejected[0], out.stdout
    assert any(MASK_MARK in line for line in out.stdout.splitlines() if line.startswith("  secret"))
    mix = [line for line in out.stdout.splitlines() if line.startswith("mix: ")]
    total = read_run(home, "training_examples", run_id).num_rows
    assert mix and mix[0].endswith(f"(total {total})") and total > 0
    # Nothing trained or promoted, and nothing a real sleep counts: its exchanges are all still new.
    assert [p.name for p in home.adapters.iterdir()] == []
    assert [v.name for v in registry.versions(home)] == ["v0000"] and registry.current_name(home) == "v0000"
    assert committed_runs(home) == set()
    assert new_exchanges(home).num_rows == 42
    said: list[str] = []
    fresh = start_or_resume(home, Settings(), "r-next", "auto", said.append)
    assert (fresh.run_id, fresh.resumed, said) == ("r-next", False, [])  # a dry run is never resumed
