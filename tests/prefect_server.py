"""A real `prefect server start` in a subprocess, on a free local port with its own PREFECT_HOME (tests, docs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

PREFECT = Path(sys.executable).with_name("prefect")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(prefect_home: Path, api_url: str | None = None) -> dict[str, str]:
    """This process's environment with Prefect pointed at its own home (and at api_url when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def wait_healthy(api_url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Return once GET <api>/health answers true; raise with the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode} before answering "
                               f"{api_url}/health; its log ({log}) ends:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:
                if r.read().strip() == b"true":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet: poll again until the deadline
        time.sleep(0.5)
    raise TimeoutError(f"prefect server did not answer {api_url}/health within {timeout:.0f} s; "
                       f"its log ({log}) ends:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """Stop the server and everything it started (its own process group): SIGTERM, then SIGKILL after grace."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)


@contextmanager
def prefect_server(prefect_home: Path, timeout: float = 120, scheduler: bool = False):
    """Yield the API URL of a fresh server on 127.0.0.1 (UI included); stop it on exit.

    The scheduler is off by default: a test must never see a cron deployment start a run on its own."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = server_env(prefect_home)
    # On a port other than 4200 the UI must be told where its API is, or it shows another server's data.
    env.update(PREFECT_SERVER_UI_API_URL=api_url, PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED=str(scheduler).lower())
    log = prefect_home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_healthy(api_url, proc, log, timeout)
        yield api_url
    finally:
        stop(proc)
