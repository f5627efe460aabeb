"""What a night over many tenants needs besides the sleep itself: which tenants have something to learn, the
Prefect global concurrency limit a machine's heavy stages share, and the `[tenants]` settings.

Prefect is imported only inside the functions that talk to it, so a single home's commands never pay for it.
The `[tenants]` settings are tasks.tenancy.TenantsConfig.
"""

from __future__ import annotations

from contextlib import contextmanager

from storage.home import Home


def pending_files(home: Home) -> int:
    """Session files in the home's inbox folders that no ingest has read yet."""
    from flows.config import load_settings
    from flows.ingest import inbox_paths
    from storage.inbox import list_session_files, read_session_file
    from storage.warehouse import read_table

    cfg = load_settings(home.config_file).ingest
    folders = inbox_paths(home, cfg)
    if not folders:
        return 0
    seen = set(read_table(home, "ingested_files", columns=["file_sha256"])["file_sha256"].to_pylist())
    files = list_session_files(folders, cfg.pattern)
    return sum(1 for f in files if read_session_file(f).sha256 not in seen)


def something_to_learn(home: Home) -> str | None:
    """Why a tenant's home needs a night ('3 new turn(s)', '1 inbox file(s)'), or None."""
    from flows.ingest import new_exchanges

    turns = new_exchanges(home).num_rows
    files = pending_files(home)
    parts = [f"{turns} new turn(s)"] * bool(turns) + [f"{files} inbox file(s)"] * bool(files)
    return ", ".join(parts) or None


@contextmanager
def heavy_slot(name: str | None):
    """Hold one slot of the Prefect global concurrency limit `name` (nothing when None): a tenant's training,
    gate and fusion run inside it, so a machine runs one tenant's heavy stages at a time."""
    if not name:
        yield
        return
    from prefect import get_run_logger
    from prefect.concurrency.sync import concurrency

    log = get_run_logger()
    log.info(f"waiting for a slot of the concurrency limit {name!r} (training, gate, fusion)")
    # strict: a missing limit is an error (the fan-out creates it), not a night without one; a lease renewal
    # that fails once (the server busy) does not stop a training in its middle.
    with concurrency(name, occupy=1, strict=True, raise_on_lease_renewal_failure=False):
        log.info(f"holding a slot of {name!r}")
        yield
    log.info(f"released the slot of {name!r}")
