"""Validate a stage's output before it lands: run the suite, store the outcome, fail the run on failure."""

from __future__ import annotations

import pyarrow as pa

from expectations.runner import Outcome, validate
from storage.home import Home
from storage.warehouse import write_table


def check(home: Home, run_id: str, suite: str, frame: pa.Table, *, id_column: str | None = None,
          params: dict | None = None) -> Outcome:
    """Validate `frame` against `suite`; the outcome lands in `validations` either way; raise on failure."""
    outcome = validate(suite, frame, id_column=id_column, params=params)
    write_table(home, "validations", run_id, pa.Table.from_pylist([outcome.as_row()]))
    outcome.raise_if_failed()
    return outcome
