"""Fault injection with real processes: a `slowwave sleep` killed (SIGKILL or SIGTERM) at every stage boundary
and in the middle of training, the gate and fusion, then run again until it finishes, ends with exactly the
rows of an uninterrupted sleep of the same conversations and seed; and a full disk loses nothing already
written and fails with one line."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import registry
from storage.catalog import connect
from storage.home import Home
from storage.runs import latest_runs
from small_sleep import write_small_config

REPO = Path(__file__).resolve().parents[1]
# Each table's identity: its rows are compared as sets of these keys, and none may repeat.
KEYS = {"messages": "message_id", "exchanges": "exchange_id", "scored_exchanges": "exchange_id",
        "candidate_pairs": "pair_id", "pairs": "pair_id", "rejections": "pair_id", "replay_buffer": "pair_id",
        "training_examples": "example_id", "train_steps": "adapter_id || ':' || step",
        "gate_results": "adapter_id"}
TRAIN_STEP = re.compile(r"\btrain\s+\[[#.]+\]\s+\d+%\s+(\d+)/(\d+)")


def _home(root: Path, sessions: Path) -> Home:
    home = Home(root).ensure()
    shutil.copytree(sessions, home.root / "inbox" / "logs")
    # Every SIGKILLed attempt counts as a failure; this test kills many.
    write_small_config(home.config_file, root / "gate-inputs", extra="[sleep]\nmax_attempts = 20\n")
    return home


def _env(api_url: str | None = None) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    return {**clean, "OPENBLAS_NUM_THREADS": "1", **({"PREFECT_API_URL": api_url} if api_url else {})}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real Prefect server for this module's many sleeps (each would otherwise start its own)."""
    from prefect_server import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-server"), timeout=180) as api_url:
        yield api_url


def _sleep(home: Home, log: Path, api_url: str, kill_when=None, sig: int = signal.SIGKILL) -> int:
    """One `slowwave sleep`; when `kill_when(stderr so far)` turns true, send `sig` from outside."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "--home", str(home.root), "sleep"],
                                stdout=err, stderr=subprocess.STDOUT, env=_env(api_url), cwd=REPO,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 900
            while kill_when is not None and proc.poll() is None and time.monotonic() < deadline:
                if kill_when(log.read_text()):
                    proc.send_signal(sig)
                    break
                time.sleep(0.05)
            return proc.wait(timeout=900)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def _after(stage: str, delay: float = 0.0):
    """Kill point: `delay` seconds after the stage's done (or resumed) line."""
    seen: list[float] = []

    def when(text: str) -> bool:
        if not seen and re.search(rf"\b{stage}\s+✓ (done|resumed)", text):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= delay
    return when


def _training_at(step: int):
    return lambda text: any(step <= int(d) < int(t) for d, t in TRAIN_STEP.findall(text))


def _rows(home: Home) -> dict[str, list[str]]:
    con = connect(home)
    return {t: sorted(str(r[0]) for r in con.sql(f"select {key} from {t}").fetchall()) for t, key in KEYS.items()}


@pytest.mark.model
def test_a_sleep_killed_at_every_stage_boundary_ends_with_the_rows_of_an_uninterrupted_one(
        tmp_path, fixture_sessions, converted_model_dir, server, prefect_harness):
    reference = _home(tmp_path / "reference", fixture_sessions)
    assert _sleep(reference, tmp_path / "reference.txt", server) == 0, \
        (tmp_path / "reference.txt").read_text()[-3000:]
    expected = _rows(reference)

    home = _home(tmp_path / "faulty", fixture_sessions)
    points = [("after ingest", _after("ingest"), signal.SIGKILL), ("after score", _after("score"), signal.SIGTERM),
              ("after extract", _after("extract"), signal.SIGKILL),
              ("after firewall", _after("firewall"), signal.SIGTERM), ("after mix", _after("mix"), signal.SIGKILL),
              ("mid training", _training_at(3), signal.SIGKILL),  # SIGTERM mid-training: tests/test_signals.py
              ("mid gate", _after("train", 2.0), signal.SIGKILL), ("mid gate", _after("train", 1.0), signal.SIGTERM),
              ("mid fusion", _after("gate", 0.3), signal.SIGKILL)]
    codes = []
    for i, (name, when, sig) in enumerate(points):
        log = tmp_path / f"attempt-{i}.txt"
        code = _sleep(home, log, server, when, sig)
        codes.append((name, sig.name, code))
        assert code in (0, -signal.SIGKILL, 128 + signal.SIGTERM), (name, code, log.read_text()[-3000:])
        assert "Traceback" not in log.read_text(), (name, log.read_text()[-3000:])
        # Whatever was cut short is invisible: `current` is a verified version, and no adapter exists yet
        # while training was interrupted (adapters are renamed into place whole).
        if registry.current_name(home) is not None:  # (the model is pulled into the home by its first sleep)
            registry.verify_folder(registry.get(home, registry.current_name(home)).path)
        if name == "mid training" and code != 0:
            assert _visible(home.adapters) == [] and registry.current_name(home) == "v0000"
        if code == 0:
            break  # it finished before this kill point: nothing later to interrupt
    final = tmp_path / "final.txt"
    assert _sleep(home, final, server) == 0, final.read_text()[-3000:]
    assert sum(code != 0 for _, _, code in codes) >= 6, codes  # most kills landed

    # The run completed once, resumed, with the same rows as the uninterrupted run: none lost, none repeated.
    runs = latest_runs(home, kind="sleep")
    assert [r["status"] for r in runs].count("completed") == 1, runs
    got = _rows(home)
    for table, keys in expected.items():
        assert len(got[table]) == len(set(got[table])), f"{table}: duplicated rows"
        assert got[table] == keys, f"{table}: {len(got[table])} rows vs {len(keys)} uninterrupted"
    assert [v.name for v in registry.versions(home)] == [v.name for v in registry.versions(reference)]
    current = registry.get(home, registry.current_name(home))
    registry.verify_folder(current.path)
    assert current.name == registry.current_name(reference)
    assert [str(p) for p in home.root.rglob("*.tmp*") if "prefect" not in p.parts] == []

    # An attempt that stopped between saving the adapter and writing its steps: the next one trains nothing
    # and takes the loss curve back from the adapter folder, where it was saved with the weights.
    run_id = next(r["run_id"] for r in runs if r["status"] == "completed")
    adapters = _visible(home.adapters)
    recorded = connect(home).sql("select step, loss, tokens from train_steps order by step").fetchall()
    shutil.rmtree(home.table_dir("train_steps") / f"run_id={run_id}")
    (home.runs / run_id / "loss.png").unlink()
    aid, _, result = _train_again(home, run_id)
    assert aid in adapters and result.iterations == len(recorded)
    assert connect(home).sql("select step, loss, tokens from train_steps order by step").fetchall() == recorded
    assert (home.runs / run_id / "loss.png").stat().st_size > 1000
    assert _visible(home.adapters) == adapters  # reused, not trained again
    again = tmp_path / "again.txt"
    assert _sleep(home, again, server) == 0 and "nothing-to-do" in again.read_text(), again.read_text()[-2000:]
    assert len(latest_runs(home, kind="sleep")) == 2


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def _train_again(home: Home, run_id: str):
    """The train stage once more for a run, in a flow of its own (on the test session's Prefect API)."""
    from prefect import flow

    from flows.adapters import train_task
    from flows.config import load_settings
    from storage.warehouse import read_table

    @flow
    def train_once():
        examples = read_table(home, "training_examples", run_ids=[run_id]).drop_columns(["run_id"])
        settings = load_settings(home.config_file)
        return train_task(home, settings.train, run_id, "light", examples, registry.get(home, "v0000"),
                          settings.mixing.rehearsal_seed)

    return train_once()


def _tiny_filesystem(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_loses_nothing_already_written_and_fails_in_one_line(tmp_path, fixture_sessions):
    mount = tmp_path / "small"
    if not _tiny_filesystem(mount, "600k"):
        pytest.skip("needs root and tmpfs to make a small filesystem (mount -t tmpfs); not available here")
    try:
        root = mount / "home"
        first = subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(root), "ingest",
                                str(fixture_sessions)], capture_output=True, text=True, env=_env(), cwd=REPO)
        assert first.returncode == 0, first.stderr[-2000:]
        home = Home(root)
        before = _rows(home)["exchanges"]
        assert len(before) == 40
        # Fill the disk almost to the brim, then ingest a big new session: its write cannot fit.
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        os.truncate(mount / "filler", max(0, (mount / "filler").stat().st_size - 64 * 1024))
        big = tmp_path / "big"
        big.mkdir()
        lines = [{"timestamp": f"2026-12-01T10:{i // 60:02d}:{i % 60:02d}+00:00", "session_id": "big",
                  "turn": i // 2, "role": "user" if i % 2 == 0 else "assistant",
                  "content": f"message {i} " + os.urandom(600).hex()} for i in range(400)]  # incompressible
        (big / "big.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        full = subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(root), "ingest", str(big)],
                              capture_output=True, text=True, env=_env(), cwd=REPO)
        assert full.returncode == 1, (full.stdout, full.stderr[-2000:])
        err = full.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("slowwave: error: ") and "no space left" in err[0].lower(), err
        assert os.strerror(errno.ENOSPC).lower() in err[0].lower()
        # Everything written before is still there and readable; no temp part is left.
        (mount / "filler").unlink()
        assert _rows(home)["exchanges"] == before
        assert [str(p) for p in root.rglob("*.tmp*")] == []
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
