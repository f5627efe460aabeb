"""Every exception slowwave raises on purpose; the CLI prints them as one line, no traceback."""

from __future__ import annotations


class SlowwaveError(Exception):
    """A user-facing failure: the message names the culprit, the limit and the fix."""


class ConfigError(SlowwaveError):
    """The configuration file or environment holds a bad value."""


class InputError(SlowwaveError):
    """An input path or file cannot be used at all."""


class SchemaError(SlowwaveError):
    """A table does not match the schema of the dataset it is written to."""


class ExpectationFailed(SlowwaveError):
    """A Great Expectations suite failed at a stage boundary."""

    def __init__(self, suite: str, failures: list[dict]):
        self.suite = suite
        self.failures = failures
        lines = [f"expectation suite '{suite}' failed ({len(failures)} expectation(s)):"]
        for f in failures:
            lines.append(
                f"  - {f['expectation']} {f.get('column') or ''}: "
                f"{f.get('unexpected_count', '?')} bad row(s), sample {f.get('sample', [])!r}"
            )
        super().__init__("\n".join(lines))


class ModelError(SlowwaveError):
    """A model cannot be fetched, converted, verified or loaded."""


class IntegrityError(SlowwaveError):
    """A file does not match the sha256 its manifest records."""


class LineageError(SlowwaveError):
    """A lineage query names a pair, exchange or model version that matches nothing, or more than one."""


class TransientError(SlowwaveError):
    """A failure that may go away when tried again (a download, a busy disk): the only kind a task retries."""


class DownloadError(ModelError, TransientError):
    """A model download failed (the network or the index); the next try may succeed."""
