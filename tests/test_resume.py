"""A resumed run must recognise its own settings in every process. (Sleeps killed mid-run and resumed, with
their rows compared to an uninterrupted sleep: tests/test_faults.py.)"""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_settings_hash_is_the_same_in_every_process():
    # The word lists are sets, dumped in hash-seeded order: a resumed run must still recognise its settings.
    code = "from flows.config import Settings; from flows.resume import settings_sha256; print(settings_sha256(Settings()))"
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(out) == 1 and len(out.pop().strip()) == 64


def test_day_side_and_schedule_settings_do_not_abandon_a_run():
    from flows.config import Settings
    from flows.resume import settings_sha256

    base = Settings()
    other = base.model_copy(update={"wake": base.wake.model_copy(update={"port": base.wake.port + 1})})
    assert settings_sha256(other) == settings_sha256(base)
    trained = base.model_copy(update={"train": base.train.model_copy(update={"seed": base.train.seed + 1})})
    assert settings_sha256(trained) != settings_sha256(base)
