"""The command line: doctor, config errors, models listing — run as a person would, in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.config import load_settings
from storage.errors import ConfigError


def _cli(*args: str, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    # A person's shell, not this test session's: the Prefect harness fixture sets PREFECT_* here.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=300, env={**clean, **(env or {})})


def test_doctor_reports_an_optimized_blas_and_its_speed(tmp_path):
    out = _cli("doctor", home=tmp_path / "h")
    assert out.returncode == 0, out.stderr
    blas = re.search(r"^blas:\s+(.+), float32 matmul (\d+) GFLOP/s with (\d+) thread\(s\)$", out.stdout, re.M)
    assert blas, out.stdout
    assert blas.group(1).startswith(("system-openblas", "scipy-openblas32 (patched)"))
    assert int(blas.group(2)) > 0  # speed itself is compared in test_model_convert and bench/
    threads = re.search(r"^threads:\s+(\d+) of (\d+) core\(s\) for training and answering \((auto|pinned)", out.stdout,
                        re.M)
    assert threads and 1 <= int(threads.group(1)) <= int(threads.group(2)), out.stdout
    assert int(threads.group(1)) == int(blas.group(3)) and threads.group(3) == "auto"
    pinned = _cli("doctor", home=tmp_path / "h", env={"SLOWWAVE_MODEL__THREADS": "1"})
    assert re.search(r"^threads:\s+1 of \d+ core\(s\) .*\(pinned by model.threads = 1", pinned.stdout, re.M), \
        pinned.stdout
    assert re.search(r"GFLOP/s with 1 thread\(s\)$", pinned.stdout, re.M)
    for key in ("platform:", "mlx:", "model:", "warehouse:", "prefect:", "pressure:"):
        assert re.search(rf"^{key}", out.stdout, re.M), key
    assert f"PREFECT_HOME={tmp_path / 'h' / 'prefect'}" in out.stdout or "PREFECT_API_URL" in out.stdout \
        or "prefect:    http" in out.stdout


def test_doctor_without_fast_blas_prints_a_hint(tmp_path):
    out = _cli("doctor", home=tmp_path / "h", env={"SLOWWAVE_BLAS": "off"})
    assert out.returncode == 0, out.stderr
    assert re.search(r"^blas:\s+reference", out.stdout, re.M)
    assert re.search(r"^hint:\s+\S", out.stdout, re.M)


def test_config_file_and_env_with_every_bad_value_listed(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[ingest]\nmax_message_bytes = 1024\n[model]\nbase = "/models/x"\n')
    s = load_settings(cfg, environ={"SLOWWAVE_INGEST__MAX_MESSAGE_BYTES": "2048"})
    assert (s.ingest.max_message_bytes, s.model.base) == (2048, "/models/x")
    cfg.write_text('[ingest]\nmax_message_bytes = -1\nbogus = 1\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    msg = str(exc.value)
    assert msg.startswith(f"{cfg}: 2 bad setting(s)")
    assert "ingest.max_message_bytes" in msg and "ingest.bogus" in msg
    cfg.write_text("[ingest\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, environ={})


def test_a_bad_environment_variable_is_blamed_on_the_variable_not_a_missing_file(tmp_path):
    cfg = tmp_path / "config.toml"  # does not exist
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={"SLOWWAVE_TRAIN__RANK": "abc", "SLOWWAVE_SLEEP__MAX_ATTEMPTS": "0"})
    msg = str(exc.value)
    assert msg.startswith("environment: 2 bad setting(s)") and str(cfg) not in msg
    assert "SLOWWAVE_TRAIN__RANK: Input should be a valid integer" in msg and "(got 'abc')" in msg
    assert "SLOWWAVE_SLEEP__MAX_ATTEMPTS: Input should be greater than or equal to 1 (got '0')" in msg


def test_file_and_environment_errors_are_listed_together_each_with_its_source(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[train]\nrank = 4\n[sleep]\ndeep_every = 0\n')
    assert load_settings(cfg, environ={"SLOWWAVE_SLEEP__DEEP_EVERY": "2"}).sleep.deep_every == 2  # env beats file
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={"SLOWWAVE_TRAIN__RANK": "x", "SLOWWAVE_NOPE__A": "1"})
    msg = str(exc.value)
    assert msg.startswith(f"environment and {cfg}: 3 bad setting(s)") and "\n" not in msg
    assert "SLOWWAVE_NOPE__A: no section 'nope'" in msg and "SLOWWAVE_TRAIN__RANK:" in msg
    assert "sleep.deep_every: Input should be greater than or equal to 1 (got 0)" in msg


def test_project_variables_are_not_read_as_sections(tmp_path):
    s = load_settings(tmp_path / "none.toml", environ={
        "SLOWWAVE_HOME": str(tmp_path), "SLOWWAVE_CACHE": "/c", "SLOWWAVE_BLAS": "off", "SLOWWAVE_MODEL": "x",
        "SLOWWAVE_TENANT": "alice", "SLOWWAVE_EVAL__MAX_TOKENS": "16", "SLOWWAVE_SCHEDULE__TIMEZONE": "null",
        "SLOWWAVE_GATE__MIN_NEW_FACT_RECALL": "0.5"})
    assert (s.eval.max_tokens, s.schedule.timezone, s.gate.min_new_fact_recall) == (16, None, 0.5)


def test_settings_reads_the_home_config_and_the_environment(tmp_path, monkeypatch):
    from flows.config import Settings

    (tmp_path / "config.toml").write_text("[sleep]\nmin_new_turns = 7\ndeep_every = 9\n")
    monkeypatch.setenv("SLOWWAVE_HOME", str(tmp_path))
    monkeypatch.setenv("SLOWWAVE_SLEEP__DEEP_EVERY", "3")
    assert (Settings().sleep.min_new_turns, Settings().sleep.deep_every) == (7, 3)
    assert Settings(sleep={"min_new_turns": 2}).sleep.min_new_turns == 2


@pytest.mark.parametrize("damage", ["not utf-8", "a folder"])
def test_an_unreadable_config_file_is_one_line_naming_it(tmp_path, damage):
    home = tmp_path / "h"
    home.mkdir()
    cfg = home / "config.toml"
    if damage == "a folder":
        cfg.mkdir()
    else:
        cfg.write_bytes(b'[train]\nrank = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not UTF-8|is a folder") as exc:
        load_settings(cfg, environ={})
    assert str(exc.value).startswith(str(cfg))
    (tmp_path / "s.jsonl").write_text("")
    out = _cli("ingest", str(tmp_path / "s.jsonl"), home=home)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and str(cfg) in out.stderr


def test_home_that_is_a_file_is_one_line(tmp_path):
    not_a_folder = tmp_path / "home.txt"
    not_a_folder.write_text("")
    for command in (["models"], ["ingest", str(not_a_folder)]):
        out = _cli(*command, home=not_a_folder)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.count("\n") == 1 and f"{not_a_folder}: --home names a file, not a folder" in out.stderr


def test_bad_config_is_one_line_without_traceback(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text("[ingest]\nmax_message_bytes = 'lots'\n")
    (tmp_path / "s.jsonl").write_text("")
    out = _cli("ingest", str(tmp_path / "s.jsonl"), home=home)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "ingest.max_message_bytes" in out.stderr and "config.toml" in out.stderr


def test_models_before_any_model(tmp_path):
    out = _cli("models", home=tmp_path / "h")
    assert out.returncode == 0 and "no model versions" in out.stdout


def test_rollback_switches_current_and_records_why(tmp_path):
    from storage import registry
    from storage.catalog import connect
    from storage.home import Home

    home = Home(tmp_path / "h").ensure()
    src = tmp_path / "m"
    src.mkdir()
    (src / "config.json").write_text("{}")
    v0 = registry.register(home, src, run_id="r0", parent=None, adapter_id=None, base="tiny")
    registry.set_current(home, v0.name, run_id="r0", action="register", reason="base")
    (src / "config.json").write_text('{"fused": 1}')
    v1 = registry.register(home, src, run_id="r1", parent="v0000", adapter_id="ad_x", base="tiny")
    registry.set_current(home, v1.name, run_id="r1", action="promote", reason="gate approved")
    listed = _cli("models", home=home.root)
    assert "sleep pressure: 0 new turn(s), never slept, no gate yet" in listed.stdout
    assert re.search(r"^\* v0001\s+v0000\s+ad_x", listed.stdout, re.M), listed.stdout
    out = _cli("rollback", "--reason", "answers got worse", home=home.root)
    assert out.returncode == 0 and "v0001 -> v0000" in out.stdout
    assert registry.current_name(home) == "v0000"
    events = connect(home).sql("select action, from_version, to_version, reason from model_events "
                               "order by \"at\"").fetchall()
    assert events[-1] == ("rollback", "v0001", "v0000", "answers got worse")
    again = _cli("rollback", home=home.root)
    assert again.returncode == 1 and "base version and has no parent" in again.stderr
    (home.models / "v0001" / "config.json").write_text("tampered")
    bad = _cli("rollback", "v0001", home=home.root)
    assert bad.returncode == 1 and "sha256 differs" in bad.stderr and registry.current_name(home) == "v0000"


def _tiny_versions(root: Path):
    """v0000 (base) and v0001 (its child, current), registered from a tiny folder of files: no model needed."""
    from storage import registry
    from storage.home import Home

    home = Home(root).ensure()
    src = root.parent / "weights"
    (src / "sub").mkdir(parents=True)
    (src / "model.safetensors").write_bytes(b"\0" * 64)
    (src / "sub" / "tokenizer.json").write_text("{}")
    registry.register(home, src, run_id="r0", parent=None, adapter_id=None, base="tiny")
    (src / "model.safetensors").write_bytes(b"\1" * 64)
    v1 = registry.register(home, src, run_id="r1", parent="v0000", adapter_id="ad_x", base="tiny",
                           extra={"gate": {"benchmark_ratio": 0.95, "ppl_drift": 0.01, "recall_post": 0.5},
                                  "run_id": "r1"})
    registry.set_current(home, v1.name, run_id="r1", action="promote", reason="gate approved")
    return home


def test_the_manifest_is_typed_and_keeps_its_keys_on_disk(tmp_path):
    import json

    from storage import registry

    home = _tiny_versions(tmp_path / "h")
    v0, v1 = registry.versions(home)
    assert (v1.manifest.parent, v1.manifest.adapter_id, v1.manifest.base) == ("v0000", "ad_x", "tiny")
    assert v1.manifest.gate["benchmark_ratio"] == 0.95 and v0.manifest.gate is None
    assert set(v1.manifest.files) == {"model.safetensors", "sub/tokenizer.json"}
    on_disk = json.loads((v0.path / registry.MANIFEST).read_text())
    assert set(on_disk) == {"version", "parent", "adapter_id", "base", "created_at", "files"}
    assert on_disk["created_at"].endswith("+00:00")
    with pytest.raises(Exception, match="frozen"):
        v1.manifest.parent = "v0009"


@pytest.mark.parametrize("damage", ["not json", "no files", "wrong version"])
def test_a_bad_manifest_is_one_line_naming_it_in_models_rollback_and_eval(tmp_path, damage):
    import json

    home = _tiny_versions(tmp_path / "h")
    manifest = home.models / "v0001" / "manifest.json"
    data = json.loads(manifest.read_text())
    if damage == "not json":
        manifest.write_text('{"version": "v0001",')
    elif damage == "no files":
        del data["files"]
        manifest.write_text(json.dumps(data))
    else:
        manifest.write_text(json.dumps({**data, "version": "v0007"}))
    why = {"not json": "not valid JSON", "no files": "files: Field required", "wrong version": "names version 'v0007'"}
    probes = Path(__file__).resolve().parents[1] / "tasks" / "data" / "eval_case" / "probes.jsonl"
    for command in (["models"], ["rollback", "v0001"], ["eval", "--probes", str(probes), "--model", "v0001"]):
        out = _cli(*command, home=home.root)
        assert out.returncode == 1 and "Traceback" not in out.stderr, (command, out.stderr)
        error = [line for line in out.stderr.splitlines() if line.startswith("slowwave: error:")]
        assert len(error) == 1 and str(manifest) in error[0] and why[damage] in error[0], (command, out.stderr)


def test_models_notices_tampered_weights_and_a_current_that_names_no_version(tmp_path):
    home = _tiny_versions(tmp_path / "h")
    ok = _cli("models", home=home.root)
    assert ok.returncode == 0 and "problem:" not in ok.stdout, ok.stdout + ok.stderr
    (home.models / "v0001" / "model.safetensors").write_bytes(b"\2" * 64)
    bad = _cli("models", home=home.root)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert re.search(r"^\* v0001", bad.stdout, re.M)  # still listed
    assert re.search(r"^problem: current v0001: .*model\.safetensors sha256 differs from the manifest.*"
                     r"`slowwave rollback v0000`$", bad.stdout, re.M), bad.stdout
    (home.models / "CURRENT").write_text("v0009\n")
    lost = _cli("models", home=home.root)
    assert lost.returncode == 1
    assert re.search(r"^problem: current: .*CURRENT names 'v0009', which is not a registered version "
                     r"\(known: v0000, v0001\)", lost.stdout, re.M), lost.stdout
    (home.models / "v0000" / "sub" / "tokenizer.json").unlink()  # not current: found without hashing
    assert re.search(r"^problem: v0000: 1 file\(s\) of its manifest are missing \(sub/tokenizer.json\)$",
                     _cli("models", home=home.root).stdout, re.M)


def test_doctor_notices_tampered_weights_a_bad_current_and_a_bad_manifest(tmp_path):
    home = _tiny_versions(tmp_path / "h")
    (home.models / "v0000" / "model.safetensors").write_bytes(b"\2" * 64)  # not current: doctor hashes every version
    (home.models / "CURRENT").write_text("v0042\n")
    out = _cli("doctor", home=home.root, env={"SLOWWAVE_BLAS": "off"})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    problems = [line for line in out.stdout.splitlines() if line.startswith("problem:")]
    assert len(problems) == 2, out.stdout
    assert "CURRENT names 'v0042'" in problems[0] and "v0000: " in problems[1]
    assert "model.safetensors sha256 differs from the manifest" in problems[1]
    assert re.search(r"^pressure:", out.stdout, re.M)  # the rest of the report is still there
    (home.models / "v0001" / "manifest.json").write_text("[]")
    out = _cli("doctor", home=home.root, env={"SLOWWAVE_BLAS": "off"})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert re.search(rf"^problem:\s+{re.escape(str(home.models / 'v0001' / 'manifest.json'))}: not a valid",
                     out.stdout, re.M), out.stdout
