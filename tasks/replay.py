"""Stage 4a: the replay buffer: decay what was replayed, retire, supersede, evict, and sample by priority."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from storage.schemas import require_columns, without_run_id

ACTIVE, RETIRED, EVICTED, SUPERSEDED = "active", "retired", "evicted", "superseded"
# A priority must stay strictly positive so weighted sampling never sees a zero weight.
MIN_PRIORITY = 1e-6
_PAIR_COLUMNS = ("pair_id", "fact_key", "question", "answer", "score", "superseded_by")


class ReplayConfig(BaseModel):
    """How replay priorities decay and how large the buffer may grow."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    decay: float = Field(0.85, gt=0, le=1, description="Each replay multiplies an item's priority by this factor.")
    retire_below: float = Field(0.05, ge=0, lt=1, description="An active item whose priority falls below this is "
                                "retired (kept for audit, never replayed again).")
    capacity: int = Field(1000, ge=1, description="Most active items; beyond it the lowest priorities are evicted "
                          "(ties: smallest pair_id first).")


def buffer_schema() -> pa.Schema:
    """The replay_buffer schema without run_id (the storage layer adds the version)."""
    return without_run_id("replay_buffer")




def supersession(new_pairs: pa.Table) -> dict[str, str]:
    """Map each pair of this batch that a later one replaces to its successor's pair_id."""
    require_columns(new_pairs, ("pair_id", "fact_key", "superseded_by"), "new_pairs")
    successor: dict[str, str] = {}
    latest: dict[str, str] = {}  # fact_key -> newest current pair_id seen so far
    for row in new_pairs.select(["pair_id", "fact_key", "superseded_by"]).to_pylist():
        if row["superseded_by"]:
            # The firewall already knows the successor: trust it over row order.
            successor[row["pair_id"]] = row["superseded_by"]
            continue
        # Rows come in log order, so a later row for the same fact_key is the newer value.
        older = latest.get(row["fact_key"])
        if older is not None and older != row["pair_id"]:
            successor[older] = row["pair_id"]
        latest[row["fact_key"]] = row["pair_id"]
    return successor


def _clip_priority(score: float) -> float:
    return min(max(float(score), MIN_PRIORITY), 1.0)


def _apply_replays(items: dict[str, dict], replayed: set[str], run_id: str, cfg: ReplayConfig) -> None:
    unknown = sorted(replayed - items.keys())
    if unknown:
        raise ValueError(f"replayed pair_id(s) not in the previous buffer: {', '.join(unknown[:5])}; "
                         "pass the ids that sample_replay returned for this buffer version")
    inactive = sorted(p for p in replayed if items[p]["status"] != ACTIVE)
    if inactive:
        named = ", ".join(f"{p} ({items[p]['status']})" for p in inactive[:5])
        raise ValueError(f"replayed pair_id(s) are not active: {named}; only active items may be replayed")
    for pid in replayed:
        item = items[pid]
        item["priority"] = item["priority"] * cfg.decay
        item["replay_count"] += 1
        item["last_replayed_run"] = run_id


def _add_new(items: dict[str, dict], new_pairs: pa.Table, run_id: str) -> None:
    successor = supersession(new_pairs)
    for row in new_pairs.select(list(_PAIR_COLUMNS)).to_pylist():
        pid = row["pair_id"]
        if pid in items:  # the same content-hashed pair again (a re-run): keep its history
            continue
        replaced_by = successor.get(pid)
        if replaced_by is None:
            # A current value retires every older item about the same fact.
            for old in items.values():
                if old["fact_key"] == row["fact_key"] and old["status"] != SUPERSEDED:
                    old["status"], old["status_reason"] = SUPERSEDED, f"superseded by {pid}"
        items[pid] = {
            "pair_id": pid, "fact_key": row["fact_key"], "question": row["question"], "answer": row["answer"],
            "priority": _clip_priority(row["score"]), "replay_count": 0, "added_run": run_id,
            "last_replayed_run": None,
            "status": ACTIVE if replaced_by is None else SUPERSEDED,
            "status_reason": None if replaced_by is None else f"superseded by {replaced_by}",
        }


def _retire(items: dict[str, dict], cfg: ReplayConfig) -> None:
    for item in items.values():
        if item["status"] == ACTIVE and item["priority"] < cfg.retire_below:
            item["status"] = RETIRED
            item["status_reason"] = (f"priority {item['priority']:.4f} below {cfg.retire_below} "
                                     f"after {item['replay_count']} replays")


def _evict(items: dict[str, dict], cfg: ReplayConfig) -> None:
    active = sorted((i for i in items.values() if i["status"] == ACTIVE), key=lambda i: (i["priority"], i["pair_id"]))
    for item in active[: max(0, len(active) - cfg.capacity)]:
        item["status"] = EVICTED
        item["status_reason"] = f"capacity {cfg.capacity}: priority {item['priority']:.4f} lowest"


def update_buffer(previous: pa.Table, new_pairs: pa.Table, replayed_pair_ids: list[str], run_id: str,
                  cfg: ReplayConfig = ReplayConfig()) -> pa.Table:
    """Return the complete new replay_buffer version (without run_id) after this run's replays and new pairs."""
    names = buffer_schema().names
    require_columns(previous, names, "previous buffer")
    require_columns(new_pairs, _PAIR_COLUMNS, "new_pairs")
    items: dict[str, dict] = {}
    for row in previous.select(names).to_pylist():
        if row["pair_id"] in items:
            raise ValueError(f"previous buffer holds pair_id {row['pair_id']} twice; "
                             "a buffer version has one row per pair")
        items[row["pair_id"]] = row
    # Order matters: decay what this run replayed, then retire, then let new values supersede and
    # only then enforce capacity, so a fresh fact is weighed against the already-decayed ones.
    _apply_replays(items, set(replayed_pair_ids), run_id, cfg)
    _add_new(items, new_pairs, run_id)
    _retire(items, cfg)
    _evict(items, cfg)
    rows = sorted(items.values(), key=lambda i: (i["added_run"], i["pair_id"]))
    return pa.Table.from_pylist(rows, schema=buffer_schema())


def sample_replay(buffer: pa.Table, k: int, rng: np.random.Generator) -> list[str]:
    """Return up to k distinct active pair_ids drawn by priority without replacement."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    require_columns(buffer, ("pair_id", "priority", "status"), "buffer")
    # Sort first so the draw depends on the seed and the buffer's content, not on its row order.
    active = sorted((r["pair_id"], r["priority"]) for r in buffer.select(["pair_id", "priority", "status"]).to_pylist()
                    if r["status"] == ACTIVE)
    k = min(k, len(active))
    if k == 0:
        return []
    weights = np.array([max(p, MIN_PRIORITY) for _, p in active], dtype=np.float64)
    picks = rng.choice(len(active), size=k, replace=False, p=weights / weights.sum())
    return [active[i][0] for i in picks]
