"""One writer per home: the OS lock refuses a second ingest, sleep or rollback and dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from storage.lock import HomeBusy, holder, home_lock
from storage.warehouse import read_table

REPO = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from pathlib import Path
from storage.lock import home_lock
with home_lock(Path(sys.argv[1]), "slowwave sleep --depth light"):
    print("held", flush=True)
    time.sleep(120)
"""


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=300, env=_env(), cwd=REPO)


@pytest.fixture
def held(tmp_path):
    """A real other process holding the home's lock; yields (home root, process)."""
    root = tmp_path / "home"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True, env=_env(),
                            cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    yield root, proc
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_naming_the_holder(held, fixture_sessions):
    root, proc = held
    for args in (("ingest", str(fixture_sessions)), ("sleep", "--depth", "light"), ("rollback",)):
        out = _cli(root, *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("slowwave: error: "), out.stderr
        assert f"in use by pid {proc.pid}" in lines[0] and "`slowwave sleep --depth light`" in lines[0], lines[0]
    assert read_table(_home(root), "exchanges").num_rows == 0  # the refused ingest wrote nothing


def _home(root: Path):
    from storage.home import Home

    return Home(root)


def test_the_lock_dies_with_its_holder_even_on_sigkill(held):
    root, proc = held
    with pytest.raises(HomeBusy):
        with home_lock(root, "test"):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with home_lock(root, "test"):  # no stale marker to clean by hand
        assert holder(root)["pid"] == os.getpid()


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    with home_lock(tmp_path, "outer"):
        with home_lock(tmp_path, "inner"):
            assert holder(tmp_path)["command"] == "outer"
        # still held by us after the inner block: another process is refused
        probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                                "from storage.lock import home_lock\nwith home_lock(Path(sys.argv[1]), 'x'): pass",
                                str(tmp_path)], capture_output=True, text=True, env=_env(), cwd=REPO)
        assert probe.returncode != 0 and "HomeBusy" in probe.stderr


def test_two_ingests_started_together_never_duplicate(tmp_path, fixture_sessions):
    root = tmp_path / "home"
    procs = [subprocess.Popen([sys.executable, "-m", "flows.cli", "--home", str(root), "ingest", str(fixture_sessions)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, outs
    for code, (_, err) in zip(codes, outs):
        assert code == 0 or "in use by pid" in err, err
    ids = read_table(_home(root), "exchanges", columns=["exchange_id"])["exchange_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 40
    # whichever lost the race, running it again adds nothing
    again = _cli(root, "ingest", str(fixture_sessions))
    assert again.returncode == 0, again.stderr
    assert read_table(_home(root), "exchanges").num_rows == 40
