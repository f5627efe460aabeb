"""Prefect settings slowwave needs, applied before Prefect is imported."""

from __future__ import annotations

import os

from storage.home import Home


def configure(home: Home) -> str:
    """Give this home its own Prefect database unless the user chose one; return the API in use."""
    os.environ.setdefault("PREFECT_HOME", str(home.root / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary server needs longer than its default to start on 2 busy cores.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5")
    return api_in_use()


def api_in_use() -> str:
    """The Prefect API URL, or a description of the temporary local server."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    return f"temporary local server (PREFECT_HOME={os.environ.get('PREFECT_HOME', '~/.prefect')})"
