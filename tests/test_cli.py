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

    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_doctor_reports_an_optimized_blas_and_its_speed(tmp_path):
    out = _cli("doctor", home=tmp_path / "h")
    assert out.returncode == 0, out.stderr
    blas = re.search(r"^blas:\s+(.+), float32 matmul (\d+) GFLOP/s$", out.stdout, re.M)
    assert blas, out.stdout
    assert blas.group(1).startswith(("system-openblas", "scipy-openblas32 (patched)"))
    assert int(blas.group(2)) > 0  # speed itself is compared in test_model_convert and bench/
    for key in ("platform:", "mlx:", "model:", "warehouse:", "prefect:"):
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
