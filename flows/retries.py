"""Which task failures are worth a retry: only those that come and go (disk, network), never a verdict."""

from __future__ import annotations

from storage.errors import SlowwaveError, TransientError


def is_transient(exc: BaseException) -> bool:
    """True for a failure that may go away: an OS-level I/O error or a TransientError; False for every
    SlowwaveError that is a verdict on the data (a failed suite, a bad file, a checksum mismatch)."""
    if isinstance(exc, TransientError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, SlowwaveError)


def retry_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry the task only when it failed on a transient error."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)
