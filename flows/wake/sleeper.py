"""Sleep pressure on the wake side: past wake.pressure_threshold new turns, start a light sleep as a subprocess.

The sleep is an ordinary `slowwave sleep --depth light` in its own process group (so it finishes even when
the server stops), its output in `runs/wake/sleep-<time>.log`. Never two at once: while one this process
started runs, or while any process holds the home's lock, a start is skipped and said so. The server keeps
answering with the version it has; the engine's watcher swaps in the new one once the sleep made it current.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Callable

from storage.home import Home
from storage.lock import HomeBusy, home_lock


def over_threshold(new_turns: int, logged: int, threshold: int | None) -> bool:
    """Whether the turns awaiting a sleep (ingested but not slept, plus those logged since) reach the threshold."""
    return threshold is not None and new_turns + logged >= threshold


def sleep_command(home: Home) -> list[str]:
    """The light sleep this process starts: the `slowwave` command of this interpreter, on this home."""
    return [sys.executable, "-m", "flows.cli", "--home", str(home.root), "sleep", "--depth", "light"]


def warehouse_new_turns(home: Home) -> int:
    """Exchanges ingested that no completed sleep has learned from (the pressure `slowwave models` shows)."""
    from flows.pressure import sleep_pressure

    return sleep_pressure(home)["new_turns"]


def lock_holder(home: Home) -> str | None:
    """Why the home cannot take a writer now (who holds its lock), or None when it is free."""
    try:
        with home_lock(home.root, "slowwave serve"):
            return None
    except HomeBusy as exc:
        return str(exc)


class Sleeper:
    """Counts the turns a wake process logged and starts a light sleep when the pressure reaches the threshold."""

    def __init__(self, home: Home, threshold: int | None, *, say: Callable[[str], None] = print,
                 new_turns: Callable[[Home], int] = warehouse_new_turns,
                 command: Callable[[Home], list[str]] = sleep_command):
        self.home, self.threshold, self.say = home, threshold, say
        self._new_turns, self._command = new_turns, command
        self.logged = 0  # turns this process logged since the last sleep it started
        self.proc: subprocess.Popen | None = None
        self.log_file: Path | None = None
        self.started: list[int] = []  # pids of every sleep started
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self) -> "Sleeper":
        """Weigh the pressure in a background thread after every logged turn (the request never waits on it)."""
        if self.threshold is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wake-pressure", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop weighing (a sleep already started keeps running)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def turn_logged(self) -> None:
        """One more exchange is in the inbox."""
        with self._lock:
            self.logged += 1
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            self.consider()

    def running(self) -> bool:
        """Whether a sleep this process started is still running."""
        return self.proc is not None and self.proc.poll() is None

    def consider(self) -> str:
        """Start a light sleep when the pressure reaches the threshold; what was decided, in words."""
        if self.threshold is None:
            return "no threshold (wake.pressure_threshold = None)"
        new_turns = self._new_turns(self.home)
        if not over_threshold(new_turns, self.logged, self.threshold):
            return f"pressure {new_turns + self.logged} new turn(s), below {self.threshold}"
        return self.start(f"sleep pressure {new_turns + self.logged} new turn(s) reached "
                          f"wake.pressure_threshold = {self.threshold}")

    def start(self, reason: str) -> str:
        """Start `slowwave sleep --depth light` unless one runs or the home is busy; what happened, in words."""
        with self._lock:
            if self.running():
                msg = f"{reason}: a sleep started earlier (pid {self.proc.pid}) still runs; not starting another"
                self.say(msg)
                return msg
            busy = lock_holder(self.home)
            if busy is not None:
                msg = f"{reason}: skipped, {busy}"
                self.say(msg)
                return msg
            folder = self.home.runs / "wake"
            folder.mkdir(parents=True, exist_ok=True)
            self.log_file = folder / f"sleep-{datetime.now().strftime('%Y%m%d_%H%M%S_%f')}.log"
            with open(self.log_file, "wb") as out:
                self.proc = subprocess.Popen(self._command(self.home), stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            counted, self.logged = self.logged, 0  # the sleep ingests the inbox: these turns are its now
            self.started.append(self.proc.pid)
            proc = self.proc
        threading.Thread(target=self._reap, args=(proc, counted, self.log_file), name="wake-sleep-reaper", daemon=True).start()
        msg = (f"{reason}: started `slowwave sleep --depth light` (pid {proc.pid}, output in {self.log_file}); "
               "answering with the current version until the sleep makes a new one current")
        self.say(msg)
        return msg

    def _reap(self, proc: subprocess.Popen, counted: int, log_file: Path) -> None:
        code = proc.wait()
        if code != 0:  # it may not have ingested them: count them again
            with self._lock:
                self.logged += counted
        self.say(f"the light sleep (pid {proc.pid}) ended with exit code {code}; its output is in {log_file}")
