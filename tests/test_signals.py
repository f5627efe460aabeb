"""Signals and crashes, with real processes: SIGTERM cancels a sleep cleanly, and no temporary Prefect server
outlives the slowwave process that started it, however that process ends."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.prefect_env import SERVER_APP, SERVERS_DIR, stop_stale_servers
from storage import registry
from storage.home import Home
from storage.runs import latest_runs

REPO = Path(__file__).resolve().parents[1]
TRAIN_STEP = re.compile(r"\btrain\s+\[[#.]+\]\s+\d+%\s+(\d+)/(\d+)")


def _env() -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    return {**clean, "OPENBLAS_NUM_THREADS": "1"}


def _alive(pid: int) -> bool:
    """True while `pid` is a live process (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _server_record(home: Home) -> dict | None:
    for f in (home.root / "prefect" / SERVERS_DIR).glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            return json.loads(f.read_text())
    return None


def _start_sleep(home: Home, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "--home", str(home.root), "sleep"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=_env(), cwd=REPO,
                            start_new_session=True)


def _home_with_sessions(tmp_path: Path, sessions: Path) -> Home:
    home = Home(tmp_path / "h").ensure()
    shutil.copytree(sessions, home.root / "inbox" / "logs")
    home.config_file.write_text("[train]\nlight_epochs = 1  # what is tested is the stop, not the learning\n")
    return home


def _training_at(log: Path, step: int) -> bool:
    return any(step <= int(d) < int(t) for d, t in TRAIN_STEP.findall(log.read_text()))


@pytest.mark.model
def test_sigterm_mid_training_cancels_within_seconds_and_leaves_nothing_half_done(tmp_path, fixture_sessions,
                                                                                 converted_model_dir):
    home = _home_with_sessions(tmp_path, fixture_sessions)
    log = tmp_path / "stderr.txt"
    proc = _start_sleep(home, log)
    try:
        server = _wait_for(lambda: _server_record(home), 120, "the temporary server's record")
        _wait_for(lambda: _training_at(log, 3) or proc.poll() is not None, 600, "training to reach step 3")
        assert proc.poll() is None, log.read_text()[-2000:]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    err = log.read_text()
    assert code == 128 + signal.SIGTERM, err[-2000:]
    assert took < 10, f"exited {took:.1f} s after SIGTERM"
    assert err.strip().splitlines()[-1] == ("slowwave: sleep cancelled: stopped by SIGTERM; "
                                            "the next sleep resumes it")
    assert "Traceback" not in err
    # Recorded as cancelled in `runs` and in Prefect's own database; not counted as a failed attempt.
    runs = latest_runs(home, kind="sleep")
    assert [r["status"] for r in runs] == ["cancelled"]
    flow_run_id = runs[0]["flow_run_id"]
    with sqlite3.connect(home.root / "prefect" / "prefect.db") as db:
        state = db.execute("select state_type from flow_run where id = ?", (flow_run_id.replace("-", ""),)
                           ).fetchone() or db.execute("select state_type from flow_run where id = ?",
                                                      (flow_run_id,)).fetchone()
    assert state == ("CANCELLED",)
    # Nothing half-written: no adapter, no new version, no temp file anywhere in the home; the lock is free.
    assert [p.name for p in home.adapters.iterdir()] == []
    assert [v.name for v in registry.versions(home)] == ["v0000"] and registry.current_name(home) == "v0000"
    assert [str(p) for p in home.root.rglob("*.tmp*")] == []
    # The temporary Prefect server went with it, and its record too.
    assert not _alive(server["pid"])
    assert _server_record(home) is None
    # The run can be resumed (the plan and the finished stages' marks are kept for the next sleep).
    marks = sorted(p.stem for p in (home.runs / runs[0]["run_id"] / "stages").glob("*.done"))
    assert marks == ["extract", "firewall", "mix", "model", "score"]


@pytest.mark.model
def test_a_sigkilled_sleep_leaves_no_prefect_server_behind(tmp_path, fixture_sessions, converted_model_dir):
    home = _home_with_sessions(tmp_path, fixture_sessions)
    log = tmp_path / "stderr.txt"
    proc = _start_sleep(home, log)
    try:
        server = _wait_for(lambda: _server_record(home), 120, "the temporary server's record")
        _wait_for(lambda: "score" in log.read_text() or proc.poll() is not None, 300, "the sleep to be running")
        assert proc.poll() is None and _alive(server["pid"]), log.read_text()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its server is not in the kill
        proc.wait()
        _wait_for(lambda: not _alive(server["pid"]), 10, f"server pid {server['pid']} to exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_server_whose_parent_is_gone_is_stopped_by_the_next_command(tmp_path):
    """Where the kernel cannot tie the server to its parent (macOS), its record lets the next run stop it."""
    home = Home(tmp_path / "h").ensure()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: the "killed parent"
    env = {**_env(), "PREFECT_HOME": str(home.root / "prefect"), "PREFECT_UI_ENABLED": "0"}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", SERVER_APP, "--host", "127.0.0.1",
                               "--port", "0", "--log-level", "error"], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        records = home.root / "prefect" / SERVERS_DIR
        records.mkdir(parents=True)
        (records / f"{gone.pid}.json").write_text(json.dumps({"pid": server.pid, "port": 0, "parent": gone.pid}))
        # A server in use (its recorded parent is its real parent, alive) is left alone.
        (records / f"{os.getpid()}.json").write_text(json.dumps({"pid": live.pid, "port": 0,
                                                                 "parent": os.getpid()}))
        said: list[str] = []
        assert stop_stale_servers(home, said.append) == [server.pid]
        assert server.wait(timeout=10) is not None
        assert said == [f"stopping the temporary Prefect server a killed run left behind (pid {server.pid}, port 0)"]
        assert sorted(p.name for p in records.iterdir()) == [f"{os.getpid()}.json"]
        assert live.poll() is None
    finally:
        for p in (server, live):
            p.kill()
            p.wait()
