"""The expectation runner with real Great Expectations: failures are collected, counted and sampled."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from expectations.derive import exchanges_frame
from expectations.runner import load_suite, validate
from storage.errors import ExpectationFailed

T = datetime(2026, 11, 20, tzinfo=timezone.utc)


def _exchanges(rows: list[dict]) -> pa.Table:
    base = {"run_id": "r", "session_id": "s", "turn": 0, "timestamp": T, "user_text": "hi", "assistant_text": "hello",
            "source_file": "f", "file_sha256": "0" * 64, "user_line": 1, "assistant_line": 2}
    return pa.Table.from_pylist([{**base, **r} for r in rows])


def _messages(ids_roles: list[tuple[str, str]]) -> pa.Table:
    return pa.Table.from_pylist([{"message_id": i, "role": r} for i, r in ids_roles])


GOOD = {"exchange_id": "ex_" + "a" * 16, "user_message_id": "m1", "assistant_message_id": "m2"}


def test_good_exchanges_pass():
    frame = exchanges_frame(_exchanges([GOOD]), _messages([("m1", "user"), ("m2", "assistant")]))
    outcome = validate("exchanges", frame, id_column="exchange_id")
    assert outcome.success and outcome.rows == 1
    assert outcome.evaluated == len(load_suite("exchanges")["expectations"])


def test_every_failure_is_listed_with_counts_and_samples():
    rows = [GOOD,
            {**GOOD},  # duplicate id
            {"exchange_id": "ex_" + "b" * 16, "user_message_id": "m9", "assistant_message_id": "m2", "user_text": ""},
            {"exchange_id": "bad-id", "user_message_id": "m2", "assistant_message_id": "m1", "turn": -1}]
    frame = exchanges_frame(_exchanges(rows), _messages([("m1", "user"), ("m2", "assistant")]))
    outcome = validate("exchanges", frame, id_column="exchange_id")
    assert not outcome.success
    failed = {(f["expectation"], f["column"]): f for f in outcome.failures}
    assert failed[("expect_column_values_to_be_unique", "exchange_id")]["unexpected_count"] == 2
    assert failed[("expect_column_values_to_match_regex", "exchange_id")]["sample"] == ["bad-id"]
    assert failed[("expect_column_values_to_be_between", "turn")]["sample"] == [-1]
    assert failed[("expect_column_values_to_be_between", "user_chars")]["sample"] == [0]
    assert failed[("expect_column_values_to_be_in_set", "messages_found")]["unexpected_count"] == 1
    assert failed[("expect_column_values_to_be_in_set", "user_role")]["sample"] == ["assistant"]
    assert failed[("expect_column_values_to_be_in_set", "assistant_role")]["sample"] == ["user"]
    with pytest.raises(ExpectationFailed) as exc:
        outcome.raise_if_failed()
    msg = str(exc.value)
    assert msg.startswith("expectation suite 'exchanges' failed (7 expectation(s))")
    assert "expect_column_values_to_be_unique exchange_id: 2 bad row(s)" in msg
    row = outcome.as_row()
    assert (row["failed"], row["success"], row["rows"]) == (7, False, 4)


def test_unknown_suite_names_the_known_ones():
    with pytest.raises(KeyError, match="known: .*'exchanges'"):
        load_suite("nope")


def test_every_suite_is_named_after_the_dataset_it_checks():
    from expectations.runner import SUITES_DIR
    from storage.schemas import SCHEMAS

    datasets = set(SCHEMAS) | {"adapters"}  # adapters are folders (adapters/<id>/), not a table
    suites = {p.stem: load_suite(p.stem)["name"] for p in SUITES_DIR.glob("*.json")}
    assert {stem for stem, name in suites.items() if stem != name} == set()
    assert set(suites) - datasets == set()
    assert {"exchanges", "scored_exchanges", "candidate_pairs", "pairs", "training_examples", "replay_buffer",
            "adapters", "gate_results", "model_versions"} <= set(suites)


def test_every_check_in_the_flows_names_a_suite_that_exists():
    import re
    from pathlib import Path

    from expectations.runner import SUITES_DIR

    flows = Path(__file__).resolve().parents[1] / "flows"
    used = {(p.name, m) for p in flows.glob("*.py")
            for m in re.findall(r'\bcheck\(\s*home,\s*run_id,\s*"([a-z_]+)"', p.read_text())}
    assert len(used) >= 9
    assert {(f, s) for f, s in used if not (SUITES_DIR / f"{s}.json").exists()} == set()
