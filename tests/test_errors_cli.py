"""Damaged homes and bad settings through the real command line: one `slowwave: error:` line (or one
`problem:` line) naming the file, key or variable and the reason, never a traceback; stale temp parts of a
killed writer are removed by the next writer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flows.cli import main
from flows.config import load_settings
from storage.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PROBES = REPO / "tasks" / "data" / "eval_case" / "probes.jsonl"


def _run(capsys, home: Path, *args: str) -> tuple[int, str, str]:
    """The CLI's main() in this process (real files, real parser): exit code, stdout, stderr."""
    code = main(["--home", str(home), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _cli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, for commands that configure Prefect or BLAS for their whole process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=120, env={**clean, **(env or {})}, cwd=REPO)


def _error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("slowwave: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _versions(root: Path):
    """v0000 (base) and v0001 (its child, current) from a folder of two small files: no model needed."""
    from storage import registry
    from storage.home import Home

    home = Home(root).ensure()
    src = root.parent / f"{root.name}-weights"
    src.mkdir()
    (src / "model.safetensors").write_bytes(b"\0" * 64)
    (src / "config.json").write_text("{}")
    registry.register(home, src, run_id="r0", parent=None, adapter_id=None, base="tiny")
    (src / "model.safetensors").write_bytes(b"\1" * 64)
    v1 = registry.register(home, src, run_id="r1", parent="v0000", adapter_id="ad_x", base="tiny",
                           extra={"gate": {"benchmark_ratio": 0.95, "ppl_drift": 0.01, "recall_post": 0.5}})
    registry.set_current(home, v1.name, run_id="r1", action="promote", reason="gate approved")
    return home


DAMAGES = {
    "nested too deeply": (lambda d: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "gate without numbers": (lambda d: json.dumps({**d, "gate": {"recall_post": 0.5}}),
                             "gate: Value error, the gate's benchmark_ratio and ppl_drift must be numbers"),
    "a file outside the folder": (lambda d: json.dumps({**d, "files": {"../../outside": "0" * 64}}),
                                  "files: Value error, '../../outside' is not a relative path inside"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_corrupt_manifest_is_one_line_naming_it_in_models_and_rollback(tmp_path, capsys, damage):
    home = _versions(tmp_path / "h")
    manifest = home.models / "v0001" / "manifest.json"
    write, why = DAMAGES[damage]
    manifest.write_text(write(json.loads(manifest.read_text())))
    for command in (["models"], ["rollback", "v0001"], ["rollback"]):
        code, _, err = _run(capsys, home.root, *command)
        line = _error_line(err)
        assert code == 1 and line.startswith(f"slowwave: error: {manifest}: ") and why in line, (command, err)
    assert (home.models / "CURRENT").read_text() == "v0001\n"  # nothing was switched


def test_a_manifest_nested_too_deeply_is_one_line_in_eval(tmp_path):
    home = _versions(tmp_path / "h")
    manifest = home.models / "v0001" / "manifest.json"
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    out = _cli(home.root, "eval", "--probes", str(PROBES), "--model", "v0001")
    line = _error_line(out.stderr)
    assert out.returncode == 1 and f"{manifest}: manifest is not valid JSON (nested too deeply)" in line


def test_an_unreadable_current_is_one_line_in_models_and_a_failed_check_in_doctor(tmp_path, capsys):
    home = _versions(tmp_path / "h")
    current = home.models / "CURRENT"
    current.write_bytes(b"v\xff\xfe1\n")
    code, _, err = _run(capsys, home.root, "models")
    line = _error_line(err)
    assert code == 1 and line.startswith(f"slowwave: error: {current}: cannot be read (") and "utf-8" in line
    out = _cli(home.root, "doctor", env={"SLOWWAVE_BLAS": "off"})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    problems = [line for line in out.stdout.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and f"{current}: cannot be read (" in problems[0], out.stdout
    assert re.search(r"^pressure:", out.stdout, re.M)  # the rest of the report is still there
    current.unlink()
    current.mkdir()  # a folder where the pointer should be
    code, _, err = _run(capsys, home.root, "rollback", "v0000")
    assert code == 1 and f"{current}: cannot be read (" in _error_line(err)


def test_a_home_under_a_file_or_with_a_file_for_a_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "home.txt"
    blocker.write_text("")
    log = tmp_path / "s.jsonl"
    log.write_text("")
    for command in (["models"], ["ingest", str(log)]):
        code, _, err = _run(capsys, blocker / "inner", *command)
        assert code == 1 and _error_line(err) == (
            f"slowwave: error: {blocker / 'inner'}: --home lies under {blocker}, which is a file, not a folder; "
            "point it at a folder (created if missing)"), (command, err)
    home = tmp_path / "h"
    home.mkdir()
    (home / "models").write_text("")  # a file where the model versions' folder belongs
    code, _, err = _run(capsys, home, "models")
    assert code == 1 and _error_line(err).startswith(f"slowwave: error: {home / 'models'}: is a file, not the folder")
    code, _, err = _run(capsys, home, "ingest", str(log))
    assert code == 1 and _error_line(err).startswith(f"slowwave: error: {home / 'models'}: is a file, not one of")


def test_model_pull_over_a_leftover_version_folder_is_one_line_and_touches_nothing(tmp_path, capsys, monkeypatch):
    base = tmp_path / "base"  # a local mlx-lm folder as model.base: nothing is downloaded
    base.mkdir()
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"\0" * 64)
    monkeypatch.setenv("SLOWWAVE_MODEL__BASE", str(base))
    home = tmp_path / "h"
    leftover = home / "models" / "v0000"
    leftover.mkdir(parents=True)
    (leftover / "weights.bin").write_bytes(b"mine")
    code, _, err = _run(capsys, home, "model", "pull")
    assert code == 1 and _error_line(err) == (
        f"slowwave: error: {leftover}: exists but has no manifest.json, so it is not a registered version and the "
        f"next version cannot take its name; move it out of {home / 'models'} or remove it")
    assert sorted(p.name for p in leftover.iterdir()) == ["weights.bin"] and not (home / "models" / "CURRENT").exists()
    (leftover / "weights.bin").unlink()
    leftover.rmdir()
    code, out, err = _run(capsys, home, "model", "pull")  # once it is out of the way the pull works
    assert code == 0 and "current model: v0000" in out, err


def test_a_bad_environment_variable_is_blamed_on_the_variable_not_a_missing_config(tmp_path, capsys, monkeypatch):
    home = tmp_path / "h"  # has no config.toml
    log = tmp_path / "s.jsonl"
    log.write_text("")
    monkeypatch.setenv("SLOWWAVE_TRAIN__RANK", "abc")
    code, _, err = _run(capsys, home, "ingest", str(log))
    assert code == 1 and _error_line(err) == (
        "slowwave: error: environment: 1 bad setting(s): SLOWWAVE_TRAIN__RANK: Input should be a valid integer, "
        "unable to parse string as an integer (got 'abc')")
    monkeypatch.delenv("SLOWWAVE_TRAIN__RANK")
    # A variable below a field that has no sub-keys sets that field: it is the one to blame, not config.toml.
    with pytest.raises(ConfigError) as exc:
        load_settings(home / "config.toml", environ={"SLOWWAVE_TRAIN__RANK__X": "1"})
    msg = str(exc.value)
    assert msg.startswith("environment: 1 bad setting(s): SLOWWAVE_TRAIN__RANK__X: Input should be a valid integer")
    assert "config.toml" not in msg and "\n" not in msg


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from storage.atomic import atomic_dir, atomic_path
    home = Path(sys.argv[1])
    with atomic_path(home / "warehouse" / "quarantine" / "run_id=r1" / "part-x.parquet") as tmp:
        tmp.write_bytes(b"PAR1 half")
        with atomic_dir(home / "adapters" / "ad_killed") as folder:
            (folder / "adapters.safetensors").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
""")
_LIVE_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from storage.atomic import atomic_path
    with atomic_path(Path(sys.argv[1]) / "runs" / "r2" / "loss.png") as tmp:
        tmp.write_bytes(b"writing")
        print(tmp.name, flush=True)
        sys.stdin.readline()
""")


def test_the_next_writer_removes_the_temp_parts_of_a_killed_writer_and_keeps_a_live_ones(tmp_path, capsys):
    home = _versions(tmp_path / "h")
    killed = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(home.root)], cwd=REPO)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    left = sorted(p.name for p in home.root.rglob("*") if ".tmp" in p.name)
    assert len(left) == 2 and all(f".{killed.pid}." in n or f"-{killed.pid}-" in n for n in left), left
    live = subprocess.Popen([sys.executable, "-c", _LIVE_WRITER, str(home.root)], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        live_tmp = home.runs / "r2" / live.stdout.readline().strip()
        assert live_tmp.is_file()
        code, out, err = _run(capsys, home.root, "models")  # a reader: removes nothing
        assert code == 0 and "removed" not in err and len([p for p in home.root.rglob("*") if ".tmp" in p.name]) == 3
        code, out, err = _run(capsys, home.root, "rollback", "--reason", "test")  # a writer
        assert code == 0 and "v0001 -> v0000" in out, err
        removed = [line for line in err.splitlines() if line.startswith("removed ")]
        assert len(removed) == 1 and removed[0].startswith(f"removed 2 temporary part(s) a killed writer left in "
                                                           f"{home.root}: "), err
        assert "adapters/.tmp-ad_killed-" in removed[0] and "warehouse/quarantine/run_id=r1/.part-x.parquet." in removed[0]
        assert [p for p in home.root.rglob("*") if ".tmp" in p.name] == [live_tmp]  # the live writer's is kept
    finally:
        live.communicate("\n", timeout=60)
    assert live.returncode == 0 and (home.runs / "r2" / "loss.png").read_bytes() == b"writing"
    assert not list(home.adapters.iterdir())


def test_a_missing_current_beside_registered_versions_is_a_problem_and_pull_never_drops_them(tmp_path, capsys,
                                                                                              monkeypatch):
    from storage import registry
    from storage.home import Home

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    monkeypatch.setenv("SLOWWAVE_MODEL__BASE", str(base))
    # A pull killed after registering v0000 but before `current` named it.
    home = Home(tmp_path / "h").ensure()
    registry.register(home, base, run_id="r0", parent=None, adapter_id=None, base=str(base))
    current = home.models / "CURRENT"
    code, out, _ = _run(capsys, home.root, "models")
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert code == 1 and problems == [f"problem: current: {current} is missing, but 1 version(s) are registered "
                                      "(newest v0000); `slowwave model pull` makes it current"], out
    code, out, err = _run(capsys, home.root, "model", "pull")  # finishes the killed pull: no second base
    assert code == 0 and "current model: v0000" in out and "registered by an interrupted pull" in err, err
    assert [v.name for v in registry.versions(home)] == ["v0000"] and current.read_text() == "v0000\n"
    # Fused versions and no `current`: a pull must not register a new base over them.
    (base / "config.json").write_text('{"fused": 1}')
    registry.register(home, base, run_id="r1", parent="v0000", adapter_id="ad_x", base=str(base),
                      extra={"gate": {"benchmark_ratio": 0.95, "ppl_drift": 0.01, "recall_post": 0.5}})
    current.unlink()
    code, out, _ = _run(capsys, home.root, "models")
    assert code == 1 and f"problem: current: {current} is missing, but 2 version(s) are registered (newest v0001); " \
                         f"point it at one (e.g. `echo v0001 > {current}`)" in out.splitlines(), out
    code, _, err = _run(capsys, home.root, "model", "pull")
    assert code == 1 and _error_line(err) == (
        f"slowwave: error: {current}: missing, but 2 version(s) are registered (newest v0001); point it at one "
        f"(e.g. `echo v0001 > {current}`) instead of pulling a new base")
    assert [v.name for v in registry.versions(home)] == ["v0000", "v0001"] and not current.exists()
