"""Validate an Arrow table / DataFrame against a JSON suite with Great Expectations."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa

from storage.errors import ExpectationFailed

SUITES_DIR = Path(__file__).parent / "suites"
SAMPLE = 5


@dataclass
class Outcome:
    """The result of one suite over one table."""

    suite: str
    success: bool
    rows: int
    evaluated: int
    failures: list[dict] = field(default_factory=list)
    validated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def raise_if_failed(self) -> None:
        """Raise one ExpectationFailed listing every failed expectation."""
        if not self.success:
            raise ExpectationFailed(self.suite, self.failures)

    def as_row(self) -> dict:
        """This outcome as a `validations` row (without run_id)."""
        return {"suite": self.suite, "validated_at": self.validated_at, "success": self.success,
                "rows": self.rows, "evaluated": self.evaluated, "failed": len(self.failures),
                "failures_json": json.dumps(self.failures, default=str)}


def load_suite(name: str) -> dict:
    """Read `expectations/suites/<name>.json`."""
    path = SUITES_DIR / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.json"))
        raise KeyError(f"no expectation suite {name!r} in {SUITES_DIR}; known: {known}")
    return json.loads(path.read_text())


@lru_cache(maxsize=1)
def _batch_definition():
    # Imported lazily: `import great_expectations` costs seconds.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GE logs its context set-up at INFO (some of its loggers set INFO on themselves); Prefect would show that
    # in every task run, and the CLI's output would not be one line.
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    # Validation results are stored in the warehouse; no data-docs site is built.
    ctx.delete_data_docs_site("local_site")
    asset = ctx.data_sources.add_pandas("slowwave").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


def _clean(values: list) -> list:
    out = []
    for v in values[:SAMPLE]:
        if isinstance(v, float) and math.isnan(v):
            v = None
        out.append(v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
    return out


def _fill(kwargs: dict, params: dict) -> dict:
    """Replace "$name" values with run-time parameters (thresholds and counts known only at run time)."""
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, str) and v.startswith("$"):
            if v[1:] not in params:
                raise KeyError(f"expectation parameter {v} has no value; pass params={{{v[1:]!r}: ...}}")
            v = params[v[1:]]
        out[k] = v
    return out


def validate(suite_name: str, data: pa.Table | pd.DataFrame, id_column: str | None = None,
             params: dict | None = None) -> Outcome:
    """Run every expectation of the suite over `data`; collect all failures, never raise."""
    from great_expectations import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    spec = load_suite(suite_name)
    df = data.to_pandas() if isinstance(data, pa.Table) else data
    suite = ExpectationSuite(name=spec["name"])
    for exp in spec["expectations"]:
        suite.add_expectation_configuration(ExpectationConfiguration(type=exp["type"], kwargs=_fill(exp["kwargs"], params or {})))
    result_format: dict = {"result_format": "COMPLETE"}
    if id_column and id_column in df.columns and len(df):
        result_format["unexpected_index_column_names"] = [id_column]
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    res = batch.validate(suite, result_format=result_format)
    failures = []
    for r in res.results:
        exc = r.exception_info or {}
        raised = exc.get("raised_exception") if isinstance(exc, dict) else False
        if r.success and not raised:
            continue
        cfg = r.expectation_config
        result = r.result or {}
        failures.append({
            "expectation": cfg.type,
            "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_list"),
            "unexpected_count": result.get("unexpected_count"),
            "sample": _clean(list(result.get("partial_unexpected_list") or [])),
            "ids": _clean([next(iter(x.values())) if isinstance(x, dict) else x
                           for x in (result.get("unexpected_index_list") or [])]),
            "observed": result.get("observed_value"),
            "error": exc.get("exception_message") if raised else None,
        })
    return Outcome(suite=suite_name, success=not failures, rows=len(df),
                   evaluated=len(res.results), failures=failures)
