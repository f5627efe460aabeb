"""Prefect settings slowwave needs, applied before Prefect is imported."""

from __future__ import annotations

import json
import os
import tomllib
from contextlib import contextmanager
from pathlib import Path

from storage.atomic import write_text_atomic
from storage.errors import ConfigError, SlowwaveError
from storage.home import Home

USER_PROFILES = Path("~/.prefect/profiles.toml")


def user_profiles() -> Path | None:
    """The user's own Prefect profiles file, when they have one and did not choose PREFECT_HOME themselves."""
    if "PREFECT_HOME" in os.environ or "PREFECT_PROFILES_PATH" in os.environ:
        return None
    path = USER_PROFILES.expanduser()
    return path if path.is_file() else None


def configure(home: Home) -> str:
    """Give this home its own Prefect database unless the user chose one; return the API in use.

    An explicit PREFECT_API_URL (environment, or `prefect config set` in the user's profile) wins."""
    profiles = user_profiles()
    if profiles is not None:
        # Prefect reads profiles from $PREFECT_HOME/profiles.toml: moving PREFECT_HOME to this home would
        # silently drop a server chosen with `prefect config set PREFECT_API_URL=…`. Keep reading theirs.
        os.environ["PREFECT_PROFILES_PATH"] = str(profiles)
    os.environ.setdefault("PREFECT_HOME", str(home.root / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary server needs longer than its default to start on 2 busy cores.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5")
    return api_in_use()


def profile_api_url() -> str | None:
    """PREFECT_API_URL of the active profile in $PREFECT_PROFILES_PATH (None without a file or the setting)."""
    raw = os.environ.get("PREFECT_PROFILES_PATH")
    if not raw or not Path(raw).expanduser().is_file():
        return None
    path = Path(raw).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: Prefect profiles file is not valid TOML ({exc}); fix or remove it") from None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    return data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")


def api_in_use() -> str:
    """The Prefect API URL, or a description of the temporary local server."""
    url = os.environ.get("PREFECT_API_URL") or profile_api_url()
    if url:
        return url
    return f"temporary local server (PREFECT_HOME={os.environ.get('PREFECT_HOME', '~/.prefect')})"


# The temporary local server: Prefect's own API server, started by slowwave so that it dies with slowwave.
# Prefect's built-in temporary server is a plain child process: a SIGKILLed parent leaves it running, holding
# its port. Ours asks the kernel to stop it when its parent dies (Linux), and records its pid and port under
# prefect/servers/, so the next command of the same home stops any whose parent is gone (any platform).
SERVERS_DIR = "servers"
SERVER_APP = "prefect.server.api.server:create_app"
_PR_SET_PDEATHSIG = 1


class PrefectServerError(SlowwaveError):
    """The temporary Prefect server could not be started."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _ps(pid: int, field: str) -> str | None:
    """`ps -o <field>` of a live process, or None when it is gone."""
    import subprocess

    out = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout.strip() or None


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return None if Path("/proc/self").exists() else _ps(pid, "command")
    except OSError:
        return None


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except FileNotFoundError:
        raw = None if Path("/proc/self").exists() else _ps(pid, "ppid")
        return int(raw) if raw else None
    except (OSError, ValueError, IndexError):
        return None


def _stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds (a process that is not our child: init reaps it)."""
    import signal
    import time

    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def stop_stale_servers(home: Home, say) -> list[int]:
    """Stop the temporary servers of this home whose slowwave process is gone; return their pids."""
    stopped = []
    for record in sorted((home.root / "prefect" / SERVERS_DIR).glob("*.json")):
        try:
            info = json.loads(record.read_text())
            pid, parent = int(info["pid"]), int(info["parent"])
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)
            continue
        if _parent_of(pid) == parent:
            continue  # its slowwave process is alive: a server in use
        if SERVER_APP in (_cmdline(pid) or ""):
            say(f"stopping the temporary Prefect server a killed run left behind (pid {pid}, port {info.get('port')})")
            _stop(pid)
            stopped.append(pid)
        record.unlink(missing_ok=True)
    return stopped


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prefect_api(home: Home, say=lambda msg: None):
    """Point Prefect at this home (configure) and, unless the user chose a server, run a temporary one for the
    block: started before Prefect is imported, stopped after, and never outliving this process."""
    import subprocess
    import sys
    import time
    import urllib.request

    api = configure(home)
    if os.environ.get("PREFECT_API_URL") or profile_api_url():
        yield api
        return
    stop_stale_servers(home, say)
    record = home.root / "prefect" / SERVERS_DIR / f"{os.getpid()}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", SERVER_APP, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "error", "--lifespan", "on", "--timeout-graceful-shutdown", "1"],
        env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        write_text_atomic(record, json.dumps({"pid": proc.pid, "port": port, "parent": os.getpid()}))
        url = f"http://127.0.0.1:{port}/api"
        wait_s = float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"])
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise PrefectServerError(f"the temporary Prefect server exited with code {proc.returncode} while "
                                         f"starting (port {port}); see its output above")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PrefectServerError(f"the temporary Prefect server did not answer on port {port} within "
                                         f"{wait_s:.0f} s; set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS "
                                         f"higher on a busy machine")
            time.sleep(0.2)
        os.environ["PREFECT_API_URL"] = url
        yield f"temporary local server at {url} (PREFECT_HOME={os.environ.get('PREFECT_HOME')})"
    finally:
        if "prefect.logging.handlers" in sys.modules:  # send what Prefect still holds before its server goes
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)
            EventsWorker.drain_all(timeout=5)
        os.environ.pop("PREFECT_API_URL", None)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        record.unlink(missing_ok=True)
