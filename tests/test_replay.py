"""Replay buffer: decay, retirement, supersession, capacity eviction and priority sampling on literal rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from storage.schemas import SCHEMAS
from tasks.replay import MIN_PRIORITY, ReplayConfig, buffer_schema, sample_replay, supersession, update_buffer

PAIRS = SCHEMAS["pairs"].remove(SCHEMAS["pairs"].get_field_index("run_id"))


def pairs(*rows: dict) -> pa.Table:
    """A pairs table (no run_id) from short literal rows: pair_id, fact_key, answer, score, superseded_by."""
    full = []
    for r in rows:
        ftype, subject = r["fact_key"].split(":")
        full.append({
            "pair_id": r["pair_id"], "exchange_id": "ex_" + r["pair_id"], "source_exchange_ids": ["ex_" + r["pair_id"]],
            "method": "template", "methods": ["template"], "fact_type": ftype, "subject": subject,
            "value": r["answer"], "question": r.get("question", f"What about {subject}?"), "answer": r["answer"],
            "span_start": None, "span_end": None, "fact_key": r["fact_key"],
            "superseded_by": r.get("superseded_by"), "grounding": 1.0, "evidence": [r["answer"]],
            "score": r.get("score", 0.5),
        })
    return pa.Table.from_pylist(full, schema=PAIRS)


def buffer(*rows: dict) -> pa.Table:
    """A replay_buffer version (no run_id) from literal rows; unspecified fields get plain defaults."""
    full = [{"pair_id": r["pair_id"], "fact_key": r.get("fact_key", "likes:" + r["pair_id"]),
             "question": r.get("question", "Q " + r["pair_id"]), "answer": r.get("answer", "A " + r["pair_id"]),
             "priority": r.get("priority", 0.5), "replay_count": r.get("replay_count", 0),
             "added_run": r.get("added_run", "r0"), "last_replayed_run": r.get("last_replayed_run"),
             "status": r.get("status", "active"), "status_reason": r.get("status_reason")} for r in rows]
    return pa.Table.from_pylist(full, schema=buffer_schema())


def by_id(table: pa.Table) -> dict[str, dict]:
    return {r["pair_id"]: r for r in table.to_pylist()}


EMPTY_BUFFER = buffer_schema().empty_table()
NO_PAIRS = PAIRS.empty_table()


def test_new_pairs_become_active_items_with_their_score_as_priority():
    new = pairs({"pair_id": "pr_a", "fact_key": "name:user", "answer": "Your name is Vladimir.",
                 "question": "What is my name?", "score": 0.42})
    out = update_buffer(EMPTY_BUFFER, new, [], "r1")
    assert out.schema == buffer_schema()
    assert "run_id" not in out.column_names
    assert out.to_pylist() == [{
        "pair_id": "pr_a", "fact_key": "name:user", "question": "What is my name?", "answer": "Your name is Vladimir.",
        "priority": 0.42, "replay_count": 0, "added_run": "r1", "last_replayed_run": None,
        "status": "active", "status_reason": None}]


def test_scores_are_clipped_into_the_open_unit_interval():
    new = pairs({"pair_id": "pr_hi", "fact_key": "job:user", "answer": "x", "score": 1.7},
                {"pair_id": "pr_zero", "fact_key": "pet_name:dog", "answer": "y", "score": 0.0})
    out = by_id(update_buffer(EMPTY_BUFFER, new, [], "r1"))
    assert out["pr_hi"]["priority"] == 1.0
    assert out["pr_zero"]["priority"] == MIN_PRIORITY > 0
    assert out["pr_zero"]["status"] == "retired"  # too weak to ever be replayed


def test_each_replay_multiplies_priority_by_0_85_and_counts():
    prev = buffer({"pair_id": "pr_a", "priority": 0.8}, {"pair_id": "pr_b", "priority": 0.6})
    v1 = by_id(update_buffer(prev, NO_PAIRS, ["pr_a"], "r1"))
    assert v1["pr_a"]["priority"] == 0.8 * 0.85
    assert v1["pr_a"]["priority"] == pytest.approx(0.68, abs=1e-12)
    assert (v1["pr_a"]["replay_count"], v1["pr_a"]["last_replayed_run"]) == (1, "r1")
    assert v1["pr_b"] == {**buffer({"pair_id": "pr_b", "priority": 0.6}).to_pylist()[0]}  # untouched
    v2 = by_id(update_buffer(pa.Table.from_pylist(list(v1.values()), schema=buffer_schema()), NO_PAIRS,
                             ["pr_a", "pr_b"], "r2"))
    assert v2["pr_a"]["priority"] == pytest.approx(0.578, abs=1e-12)
    assert v2["pr_b"]["priority"] == pytest.approx(0.51, abs=1e-12)
    assert (v2["pr_a"]["replay_count"], v2["pr_a"]["last_replayed_run"]) == (2, "r2")


def test_an_item_is_retired_on_the_replay_that_takes_it_below_0_05_and_kept():
    version = buffer({"pair_id": "pr_a", "priority": 1.0})
    statuses = []
    for n in range(1, 21):
        ids = ["pr_a"] if by_id(version)["pr_a"]["status"] == "active" else []
        version = update_buffer(version, NO_PAIRS, ids, f"r{n:02d}")
        statuses.append(by_id(version)["pr_a"]["status"])
    # 0.85**18 = 0.0536 stays active; 0.85**19 = 0.0456 retires.
    assert statuses[:18] == ["active"] * 18 and statuses[18:] == ["retired", "retired"]
    item = by_id(version)["pr_a"]
    assert item["replay_count"] == 19
    assert item["priority"] == pytest.approx(0.85 ** 19)
    assert item["status_reason"] == "priority 0.0456 below 0.05 after 19 replays"


def test_replaying_an_unknown_or_inactive_item_names_it():
    prev = buffer({"pair_id": "pr_a"}, {"pair_id": "pr_old", "status": "retired", "priority": 0.01})
    with pytest.raises(ValueError, match="pr_ghost"):
        update_buffer(prev, NO_PAIRS, ["pr_ghost"], "r1")
    with pytest.raises(ValueError, match=r"pr_old \(retired\)"):
        update_buffer(prev, NO_PAIRS, ["pr_old"], "r1")


def test_capacity_evicts_the_lowest_priorities_and_keeps_their_history():
    cfg = ReplayConfig(capacity=3)
    prev = buffer({"pair_id": "pr_a", "priority": 0.9}, {"pair_id": "pr_b", "priority": 0.2},
                  {"pair_id": "pr_c", "priority": 0.7})
    new = pairs({"pair_id": "pr_d", "fact_key": "job:user", "answer": "You are a baker.", "score": 0.5},
                {"pair_id": "pr_e", "fact_key": "hobby:user", "answer": "You paint.", "score": 0.6})
    out = by_id(update_buffer(prev, new, [], "r1", cfg))
    assert len(out) == 5  # nothing disappears
    assert [p for p, r in out.items() if r["status"] == "active"] == ["pr_a", "pr_c", "pr_e"]
    assert out["pr_b"]["status"] == "evicted"
    assert out["pr_b"]["status_reason"] == "capacity 3: priority 0.2000 lowest"
    assert out["pr_d"]["status"] == "evicted"  # a fresh fact is weighed like any other
    assert out["pr_d"]["status_reason"] == "capacity 3: priority 0.5000 lowest"
    # An evicted item stays evicted in later versions.
    version = pa.Table.from_pylist(list(out.values()), schema=buffer_schema())
    later = by_id(update_buffer(version, NO_PAIRS, [], "r2", cfg))
    assert later["pr_d"]["status"] == "evicted" and later["pr_d"]["status_reason"] == out["pr_d"]["status_reason"]


def test_capacity_eviction_reason_uses_the_configured_capacity_and_four_decimals():
    out = by_id(update_buffer(buffer({"pair_id": "pr_a", "priority": 0.0712}, {"pair_id": "pr_b", "priority": 0.9}),
                              NO_PAIRS, [], "r1", ReplayConfig(capacity=1)))
    assert out["pr_a"]["status_reason"] == "capacity 1: priority 0.0712 lowest"


def test_capacity_ties_are_broken_by_pair_id():
    prev = buffer({"pair_id": "pr_c", "priority": 0.3}, {"pair_id": "pr_a", "priority": 0.3},
                  {"pair_id": "pr_b", "priority": 0.3}, {"pair_id": "pr_z", "priority": 0.9})
    for order in (prev, prev.take([3, 2, 1, 0])):
        out = by_id(update_buffer(order, NO_PAIRS, [], "r1", ReplayConfig(capacity=2)))
        assert sorted(p for p, r in out.items() if r["status"] == "evicted") == ["pr_a", "pr_b"]


def test_a_new_value_for_a_fact_key_supersedes_the_buffered_one():
    prev = buffer({"pair_id": "pr_paris", "fact_key": "lives_in:user", "answer": "You live in Paris.", "priority": 0.7})
    new = pairs({"pair_id": "pr_lyon", "fact_key": "lives_in:user", "answer": "You live in Lyon.", "score": 0.4})
    out = by_id(update_buffer(prev, new, [], "r2"))
    assert out["pr_paris"]["status"] == "superseded"
    assert out["pr_paris"]["status_reason"] == "superseded by pr_lyon"
    assert out["pr_paris"]["priority"] == 0.7  # history kept as it was
    assert out["pr_lyon"]["status"] == "active"


def test_supersession_inside_one_batch_by_superseded_by_or_by_row_order():
    new = pairs({"pair_id": "pr_1", "fact_key": "pet_name:dog", "answer": "Rex", "superseded_by": "pr_2"},
                {"pair_id": "pr_2", "fact_key": "pet_name:dog", "answer": "Max"},
                {"pair_id": "pr_3", "fact_key": "job:user", "answer": "nurse"},
                {"pair_id": "pr_4", "fact_key": "job:user", "answer": "doctor"})
    assert supersession(new) == {"pr_1": "pr_2", "pr_3": "pr_4"}
    out = by_id(update_buffer(EMPTY_BUFFER, new, [], "r1"))
    assert {p: (r["status"], r["status_reason"]) for p, r in out.items()} == {
        "pr_1": ("superseded", "superseded by pr_2"), "pr_2": ("active", None),
        "pr_3": ("superseded", "superseded by pr_4"), "pr_4": ("active", None)}


def test_the_same_pair_arriving_again_keeps_its_history():
    new = pairs({"pair_id": "pr_a", "fact_key": "name:user", "answer": "Vladimir", "score": 0.9})
    v1 = update_buffer(EMPTY_BUFFER, new, [], "r1")
    v2 = update_buffer(v1, new, ["pr_a"], "r2")
    assert v2.num_rows == 1
    row = v2.to_pylist()[0]
    assert (row["added_run"], row["replay_count"], row["status"]) == ("r1", 1, "active")


def test_previous_version_may_carry_run_id_and_output_is_sorted_by_added_run():
    prev = buffer({"pair_id": "pr_b", "added_run": "r1"}, {"pair_id": "pr_a", "added_run": "r2"})
    prev = prev.append_column("run_id", pa.array(["r2", "r2"]))
    out = update_buffer(prev, pairs({"pair_id": "pr_0", "fact_key": "name:user", "answer": "x"}), [], "r3")
    assert out.column("pair_id").to_pylist() == ["pr_b", "pr_a", "pr_0"]


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="score"):
        update_buffer(EMPTY_BUFFER, pairs().drop_columns(["score"]), [], "r1")


def test_config_is_frozen_documented_and_strict():
    cfg = ReplayConfig()
    assert (cfg.decay, cfg.retire_below, cfg.capacity) == (0.85, 0.05, 1000)
    assert all(f.description for f in ReplayConfig.model_fields.values())
    with pytest.raises(ValidationError):
        ReplayConfig(capcity=3)
    with pytest.raises(ValidationError):
        cfg.decay = 0.5


MIXED = buffer({"pair_id": "pr_a", "priority": 0.9}, {"pair_id": "pr_b", "priority": 0.2},
               {"pair_id": "pr_r", "priority": 0.01, "status": "retired"},
               {"pair_id": "pr_e", "priority": 0.95, "status": "evicted"},
               {"pair_id": "pr_s", "priority": 0.99, "status": "superseded"},
               {"pair_id": "pr_c", "priority": 0.5}, {"pair_id": "pr_d", "priority": 0.3})


def test_sampling_only_returns_distinct_active_items():
    for seed in range(50):
        got = sample_replay(MIXED, 3, np.random.default_rng(seed))
        assert len(got) == len(set(got)) == 3
        assert set(got) <= {"pr_a", "pr_b", "pr_c", "pr_d"}
    assert sorted(sample_replay(MIXED, 99, np.random.default_rng(0))) == ["pr_a", "pr_b", "pr_c", "pr_d"]
    assert sample_replay(MIXED, 0, np.random.default_rng(0)) == []
    with pytest.raises(ValueError, match="-1"):
        sample_replay(MIXED, -1, np.random.default_rng(0))


def test_sampling_is_seeded_and_independent_of_row_order():
    first = sample_replay(MIXED, 2, np.random.default_rng(7))
    assert sample_replay(MIXED, 2, np.random.default_rng(7)) == first
    assert sample_replay(MIXED.take(list(range(MIXED.num_rows))[::-1]), 2, np.random.default_rng(7)) == first
    assert len({tuple(sample_replay(MIXED, 2, np.random.default_rng(s))) for s in range(10)}) > 1


def test_sampling_favours_high_priority():
    buf = buffer({"pair_id": "pr_hi", "priority": 1.0}, {"pair_id": "pr_lo", "priority": 0.06})
    picks = [sample_replay(buf, 1, np.random.default_rng(s))[0] for s in range(300)]
    assert picks.count("pr_hi") > 250
