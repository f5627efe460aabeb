"""A sleep killed mid-training (a real SIGKILL) is resumed by the next sleep: nothing redone, duplicated or lost."""

from __future__ import annotations

import contextlib
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
from storage.runs import committed_runs, latest_runs


def test_the_settings_hash_is_the_same_in_every_process():
    # The word lists are sets, dumped in hash-seeded order: a resumed run must still recognise its settings.
    code = "from flows.config import Settings; from flows.resume import settings_sha256; print(settings_sha256(Settings()))"
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(out) == 1 and len(out.pop().strip()) == 64


# The CLI's progress line off a terminal (flows/progress.py LineView), e.g. "train     [##....]  10% 7/68 loss 2.1",
# inside a Prefect log line when the flow captures prints.
TRAIN_PROGRESS = re.compile(r"\btrain\s+\[[#.]+\]\s+\d+%\s+(\d+)/(\d+)")


def _kill_when_training_reaches(proc: subprocess.Popen, err: Path, step: int, timeout: float = 900) -> None:
    """SIGKILL the sleep process, from outside, once its progress output shows training at `step` or later
    (but not finished); return early if it exits first (the caller's returncode check then fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        reached = [(int(d), int(t)) for d, t in TRAIN_PROGRESS.findall(err.read_text())]
        if any(step <= d < t for d, t in reached):
            os.kill(proc.pid, signal.SIGKILL)
            return
        time.sleep(0.2)


def _sleep(home: Path, *, kill_at_step: int | None = None) -> subprocess.CompletedProcess:
    """`slowwave sleep` in its own process group, SIGKILLed from outside mid-training when `kill_at_step` is
    given; output goes to files, since a SIGKILLed run's temporary Prefect server outlives it holding any pipe
    open. The group is killed afterwards: nothing leaks."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    args = [sys.executable, "-m", "flows.cli", "--home", str(home), "sleep"]
    out, err = home.parent / "stdout.txt", home.parent / "stderr.txt"
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.Popen(args, stdout=fo, stderr=fe, text=True, start_new_session=True,
                                env={**clean, "OPENBLAS_NUM_THREADS": "1"})
        try:
            if kill_at_step is not None:
                _kill_when_training_reaches(proc, err, kill_at_step)
            code = proc.wait(timeout=900)
        finally:
            with contextlib.suppress(ProcessLookupError):  # the group is already gone: nothing was left
                os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(args, code, out.read_text(), err.read_text())


def _train_again(home: Home, run_id: str):
    """The train stage once more for a run, in a flow of its own (on the test session's Prefect API)."""
    from prefect import flow

    from flows.config import load_settings
    from flows.adapters import train_task
    from storage.warehouse import read_table

    @flow
    def train_once():
        examples = read_table(home, "training_examples", run_ids=[run_id]).drop_columns(["run_id"])
        settings = load_settings(home.config_file)
        return train_task(home, settings.train, run_id, "light", examples, registry.get(home, "v0000"),
                          settings.mixing.rehearsal_seed)

    return train_once()


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


@pytest.mark.model
@pytest.mark.prefect
def test_a_sleep_killed_during_training_is_resumed_by_the_next(tmp_path, fixture_sessions, converted_model_dir,
                                                               prefect_harness):
    home = Home(tmp_path / "h").ensure()
    shutil.copytree(fixture_sessions, home.root / "inbox" / "logs")
    home.config_file.write_text("[train]\nlight_epochs = 1  # what is tested is the resume, not the learning\n")

    killed = _sleep(home.root, kill_at_step=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    reached = [int(d) for d, _ in TRAIN_PROGRESS.findall(killed.stderr)]
    assert reached and max(reached) >= 5  # killed mid-training, after some steps had run
    # Nothing half-written is visible: no adapter, no new version, `current` still the verified base.
    assert _visible(home.adapters) == []
    assert [v.name for v in registry.versions(home)] == ["v0000"] and registry.current_name(home) == "v0000"
    registry.verify_folder(registry.get(home, "v0000").path)
    assert committed_runs(home) == set()
    plans = sorted(home.runs.glob("*/plan.json"))
    assert len(plans) == 1
    run_id = plans[0].parent.name
    done = sorted(p.stem for p in (plans[0].parent / "stages").glob("*.done"))
    assert done == ["extract", "firewall", "mix", "model", "score"]
    con = connect(home)
    before = {t: con.sql(f"select count(*) from {t}").fetchall()[0][0]
              for t in ("scored_exchanges", "candidate_pairs", "pairs", "training_examples", "replay_buffer")}
    assert con.sql("select count(*) from train_steps").fetchall()[0][0] == 0

    resumed = _sleep(home.root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming run {run_id}" in resumed.stderr
    runs = latest_runs(home, kind="sleep")
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "completed")]
    summary = json.loads(runs[0]["summary_json"])
    assert summary["resumed"] == done
    con = connect(home)
    after = {t: con.sql(f"select count(*) from {t}").fetchall()[0][0] for t in before}
    assert after == before  # the finished stages were read back, not written again
    # One row per exchange, pair and example: nothing duplicated; every exchange scored: nothing lost.
    assert con.sql("select count(*), count(distinct exchange_id) from scored_exchanges").fetchall()[0] == (40, 40)
    for table, key in (("candidate_pairs", "pair_id"), ("pairs", "pair_id"), ("training_examples", "example_id")):
        n, distinct = con.sql(f"select count(*), count(distinct {key}) from {table}").fetchall()[0]
        assert n == distinct > 0, table
    adapters = _visible(home.adapters)
    assert len(adapters) == 1
    steps = con.sql("select count(*), count(distinct step), min(step), max(step) from train_steps").fetchall()[0]
    assert steps[0] == steps[1] == steps[3] == summary["stages"]["train"]["steps"] and steps[2] == 1
    assert con.sql("select count(*) from gate_results").fetchall()[0][0] == 1
    current = registry.get(home, registry.current_name(home))
    registry.verify_folder(current.path)
    expected = ["v0000", "v0001"] if summary["stages"]["gate"]["decision"] == "approved" else ["v0000"]
    assert [v.name for v in registry.versions(home)] == expected and current.name == expected[-1]

    # An attempt that stopped between saving the adapter and writing its steps: the next one trains nothing
    # and takes the loss curve back from the adapter folder, where it was saved with the weights.
    recorded = con.sql("select step, loss, tokens from train_steps order by step").fetchall()
    shutil.rmtree(home.table_dir("train_steps") / f"run_id={run_id}")
    (home.runs / run_id / "loss.png").unlink()
    aid, folder, result = _train_again(home, run_id)
    assert aid == adapters[0] and result.iterations == len(recorded)
    assert connect(home).sql("select step, loss, tokens from train_steps order by step").fetchall() == recorded
    assert (home.runs / run_id / "loss.png").stat().st_size > 1000
    assert _visible(home.adapters) == adapters  # reused, not trained again

    again = _sleep(home.root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing-to-do" in again.stdout
    assert len(latest_runs(home, kind="sleep")) == 2
