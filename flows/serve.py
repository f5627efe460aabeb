"""`slowwave serve`: the OpenAI-compatible API and web chat page on 127.0.0.1, always the current version.

The recipe: check the settings, make sure a current version exists, load it, start the swap watcher and
the sleep-pressure watcher, bind the port (a port in use is one line, before anything loads) and run
uvicorn until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import errno
import socket
from typing import Callable

from pydantic import ValidationError

from flows.wake.config import WakeConfig
from storage.errors import ConfigError, InputError
from storage.home import Home


def wake_settings(cfg: WakeConfig, host: str | None, port: int | None) -> WakeConfig:
    """The [wake] settings with --host/--port applied (checked like the file's values)."""
    given = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    try:
        return WakeConfig.model_validate({**cfg.model_dump(), **given})
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ConfigError(f"--{e['loc'][0]}: {e['msg']} (got {e.get('input')!r})") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; InputError naming the address when it is taken or cannot be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "already in use (another server?)" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise InputError(f"{host}:{port}: {why}; choose another with --port or wake.port") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def serve(home: Home, settings, *, host: str | None = None, port: int | None = None,
          say: Callable[[str], None] = print) -> int:
    """Serve until stopped; the exit code."""
    import uvicorn

    from flows.prefect_env import configure
    from flows.wake.api import create_app
    from flows.wake.engine import Engine, ensure_current
    from flows.wake.sleeper import Sleeper
    from storage.session_log import SessionLogs, inbox_dir

    cfg = wake_settings(settings.wake, host, port)
    sock = bind(cfg.host, cfg.port)
    configure(home.ensure())  # the pressure reads the warehouse through code that imports Prefect
    ensure_current(home, settings.model, say=say)
    engine = Engine(home, cfg, say=say).start()
    sleeper = Sleeper(home, cfg.pressure_threshold, say=say).watch()
    try:
        app = create_app(engine, SessionLogs(inbox_dir(home)), sleeper, say=say)
        threshold = (f"a light sleep starts at {cfg.pressure_threshold} new turns" if cfg.pressure_threshold
                     else "no sleep starts by itself")
        say(f"serving {engine.served.version} on http://{cfg.host}:{cfg.port}/ (API at /v1, loaded in "
            f"{engine.served.load_seconds:.1f} s); turns are logged to {inbox_dir(home)}; {threshold}")
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3))
        server.run(sockets=[sock])
    finally:
        sleeper.close()
        engine.close()
        sock.close()
    return 0
