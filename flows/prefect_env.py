"""Prefect settings slowwave needs, applied before Prefect is imported."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from storage.errors import ConfigError
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
