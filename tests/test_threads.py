"""BLAS threads from the cores other work leaves free: the choice on literal loads, and the real BLAS obeying it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tasks.model.threads import busy_elsewhere, choose_threads, own_runnable_threads, runnable_threads


@pytest.mark.parametrize("setting, cores, busy, threads", [
    (0, 2, 0.0, 2), (0, 2, 0.4, 2), (0, 2, 0.6, 1), (0, 2, 2.0, 1), (0, 2, 7.0, 1),
    (0, 8, 3.0, 5), (0, 8, 0.0, 8), (3, 2, 0.0, 3), (1, 8, 0.0, 1),
])
def test_auto_takes_the_free_cores_and_a_setting_pins_them(setting, cores, busy, threads):
    choice = choose_threads(setting, cores, busy)
    assert choice.threads == threads
    assert choice.reason.startswith("pinned" if setting else "auto")


def test_other_processes_busy_threads_are_counted_and_ours_are_not():
    assert runnable_threads() >= own_runnable_threads() >= 1
    burner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
    try:
        assert busy_elsewhere(samples=20) >= 0.5  # the burner is runnable nearly all the time
    finally:
        burner.kill()
        burner.wait()


def test_the_loaded_blas_takes_the_thread_count():
    code = ("from tasks.model.blas import ensure_fast_blas; info = ensure_fast_blas()\n"
            "from tasks.model.threads import blas_threads, set_blas_threads\n"
            "assert info.optimized, info\n"
            "assert set_blas_threads(1) and blas_threads() == 1\n"
            "assert set_blas_threads(2) and blas_threads() == 2\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
