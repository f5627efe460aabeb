"""How many BLAS threads the heavy stages use: the cores other work leaves free.

OpenBLAS's threads spin-wait for each other. With every core busy with other work, a thread that is
descheduled stalls the others, and a LoRA step on the 2 cores of a laptop ran 15-20x slower than idle
instead of ~2x. So before a model is loaded for training, gating or answering, slowwave counts the
threads other processes keep runnable and gives the BLAS only the cores left (at least one).
`[model] threads` pins a number instead; `slowwave doctor` shows the choice.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass

# The thread-count setters of the BLAS builds slowwave loads (system OpenBLAS, patched scipy-openblas32).
SETTERS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads")
GETTERS = ("openblas_get_num_threads", "scipy_openblas_get_num_threads")


@dataclass(frozen=True)
class ThreadChoice:
    """The BLAS thread count chosen for a heavy stage, and why."""

    threads: int
    cores: int
    busy: float  # threads other processes kept runnable, on average over the sample
    reason: str


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def runnable_threads() -> int:
    """Threads runnable on the whole machine right now (procs_running in /proc/stat; Linux only)."""
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("procs_running "):
                return int(line.split()[1])
    raise OSError("/proc/stat has no procs_running line")


def own_runnable_threads() -> int:
    """This process's threads that are runnable right now (this one included)."""
    running = 0
    for task in os.scandir("/proc/self/task"):
        try:
            with open(f"{task.path}/stat", encoding="ascii", errors="replace") as fh:
                state = fh.read().rpartition(")")[2].split()[0]  # the field after the command name
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        running += state == "R"
    return running


def busy_elsewhere(samples: int = 10, interval: float = 0.01) -> float:
    """Average threads that other processes keep runnable (this process's own are left out)."""
    counts = []
    for _ in range(samples):
        counts.append(max(0, runnable_threads() - own_runnable_threads()))
        time.sleep(interval)
    return sum(counts) / len(counts)


def choose_threads(setting: int, cores: int, busy: float) -> ThreadChoice:
    """`setting` > 0 pins the count; 0 (auto) takes the cores that `busy` other threads leave free, at least 1."""
    if setting > 0:
        return ThreadChoice(setting, cores, busy, f"pinned by model.threads = {setting}")
    free = max(1, min(cores, int(cores - busy + 0.5)))
    why = "idle machine" if free == cores else f"{busy:.1f} thread(s) of other work on {cores} core(s)"
    return ThreadChoice(free, cores, busy, f"auto: {why}")


def _blas_function(names: tuple[str, ...]):
    lib = ctypes.CDLL(None)  # the process's global symbols: the BLAS was loaded RTLD_GLOBAL
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn
    return None


def set_blas_threads(n: int) -> bool:
    """Tell the loaded BLAS to use `n` threads; False when it has no thread setting (reference BLAS, macOS)."""
    setter = _blas_function(SETTERS)
    if setter is None:
        return False
    setter.argtypes = [ctypes.c_int]
    setter(int(n))
    return True


def blas_threads() -> int | None:
    """The loaded BLAS's thread count, or None when it cannot say."""
    getter = _blas_function(GETTERS)
    if getter is None:
        return None
    getter.restype = ctypes.c_int
    return int(getter())


# The process's setting ([model] threads, set once by the flow or command) and the last choice made with it.
_setting = 0
_last: ThreadChoice | None = None


def configure(setting: int) -> None:
    """Use `setting` (0 = auto) for every later choice in this process."""
    global _setting
    _setting = int(setting)


def last_choice() -> ThreadChoice | None:
    """The most recent choice apply_threads made (None before the first)."""
    return _last


def apply_threads(setting: int | None = None, samples: int = 10) -> ThreadChoice:
    """Choose the thread count for the work about to start (see choose_threads; `setting` defaults to the
    configured one) and set it in the BLAS."""
    global _last
    try:
        busy = busy_elsewhere(samples=samples)
    except OSError:
        busy = 0.0  # no /proc (macOS): the BLAS (Accelerate) schedules itself
    choice = choose_threads(_setting if setting is None else setting, usable_cores(), busy)
    if _last is None or choice.threads != _last.threads:
        set_blas_threads(choice.threads)
    _last = choice
    return choice
